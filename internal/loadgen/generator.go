package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Options configure a Generator.
type Options struct {
	// Scenario to play; required.
	Scenario *Scenario
	// Exporter receives the spans; required. The generator does not shut
	// it down.
	Exporter sdktrace.SpanExporter
	// Rate overrides the scenario's requests per second when positive.
	Rate float64
	// Duration bounds the run; 0 runs until the context ends.
	Duration time.Duration
	// BatchInterval is the time between exports; default 200ms.
	BatchInterval time.Duration
	// Seed makes the traffic reproducible; 0 picks one.
	Seed uint64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Ticks, when not nil, wakes the sending loop instead of a ticker of
	// BatchInterval: each value received is one wake-up. With Now, it
	// makes a run independent of wall time.
	Ticks <-chan time.Time
}

// Stats count what was sent.
type Stats struct {
	Requests, Spans, Errors, ExportErrors int64
}

// Generator plays a scenario.
type Generator struct {
	sc        *Scenario
	exp       sdktrace.SpanExporter
	rate      float64
	duration  time.Duration
	interval  time.Duration
	now       func() time.Time
	ticks     <-chan time.Time
	rng       *rand.Rand
	services  map[string]*Service
	ops       map[string]*Operation
	entries   []entry
	entrySum  float64
	resources map[string]*resource.Resource
	mu        sync.Mutex // guards rng during generation
	requests  atomic.Int64
	spans     atomic.Int64
	errs      atomic.Int64
	expErrs   atomic.Int64
}

type entry struct {
	service string
	op      *Operation
	share   float64
}

// New validates the options and returns a generator.
func New(o Options) (*Generator, error) {
	if o.Scenario == nil {
		return nil, errors.New("loadgen: a scenario is required")
	}
	if o.Exporter == nil {
		return nil, errors.New("loadgen: an exporter is required")
	}
	if err := o.Scenario.Validate(); err != nil {
		return nil, err
	}
	switch {
	case o.Rate < 0:
		return nil, fmt.Errorf("loadgen: rate must not be negative, got %g", o.Rate)
	case o.Duration < 0:
		return nil, fmt.Errorf("loadgen: duration must not be negative, got %s", o.Duration)
	case o.BatchInterval < 0:
		return nil, fmt.Errorf("loadgen: batch interval must not be negative, got %s", o.BatchInterval)
	}
	g := &Generator{sc: o.Scenario, exp: o.Exporter, rate: o.Scenario.Rate, duration: o.Duration,
		interval: o.BatchInterval, now: o.Now, ticks: o.Ticks, services: map[string]*Service{}, ops: map[string]*Operation{},
		resources: map[string]*resource.Resource{}}
	if o.Rate > 0 {
		g.rate = o.Rate
	}
	if g.interval == 0 {
		g.interval = 200 * time.Millisecond
	}
	if g.now == nil {
		g.now = time.Now
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	g.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range g.sc.Services {
		s := &g.sc.Services[i]
		g.services[s.Name] = s
		for j := range s.Operations {
			op := &s.Operations[j]
			g.ops[s.Name+"\x00"+op.Name] = op
			if op.Share > 0 {
				g.entries = append(g.entries, entry{service: s.Name, op: op, share: op.Share})
				g.entrySum += op.Share
			}
		}
	}
	return g, nil
}

// Rate is the effective requests per second.
func (g *Generator) Rate() float64 { return g.rate }

// Stats returns what was sent so far.
func (g *Generator) Stats() Stats {
	return Stats{Requests: g.requests.Load(), Spans: g.spans.Load(), Errors: g.errs.Load(), ExportErrors: g.expErrs.Load()}
}

// Run sends traffic at the rate until the duration has passed or ctx ends;
// it returns nil then. Export failures are counted, not returned (the
// receiver may not be up yet).
func (g *Generator) Run(ctx context.Context) error {
	start := g.now()
	ticks := g.ticks
	if ticks == nil {
		t := time.NewTicker(g.interval)
		defer t.Stop()
		ticks = t.C
	}
	var sent int64
	for {
		elapsed := g.now().Sub(start)
		if g.duration > 0 && elapsed > g.duration {
			elapsed = g.duration
		}
		due := int64(g.rate*elapsed.Seconds()) - sent
		if due > 0 {
			spans := g.Traces(int(due), elapsed)
			sent += due
			if err := g.exp.ExportSpans(ctx, spans); err != nil && ctx.Err() == nil {
				g.expErrs.Add(1)
			}
		}
		if g.duration > 0 && elapsed >= g.duration {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
	}
}

// Traces generates n requests as of elapsed time since the start (which
// decides the serving versions and the injected changes); the spans end at
// the current time.
func (g *Generator) Traces(n int, elapsed time.Duration) []sdktrace.ReadOnlySpan {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var stubs tracetest.SpanStubs
	for range n {
		b := &builder{g: g, elapsed: elapsed}
		var tid trace.TraceID
		g.fill(tid[:])
		e := g.pickEntry()
		end, failed := b.serve(e.service, e.op, tid, trace.SpanID{}, 0)
		// Shift the trace so that it ends now.
		shift := now.Add(-end)
		for i := range b.stubs {
			b.stubs[i].StartTime = shift.Add(time.Duration(b.stubs[i].StartTime.UnixNano()))
			b.stubs[i].EndTime = shift.Add(time.Duration(b.stubs[i].EndTime.UnixNano()))
		}
		stubs = append(stubs, b.stubs...)
		g.requests.Add(1)
		if failed {
			g.errs.Add(1)
		}
	}
	g.spans.Add(int64(len(stubs)))
	return stubs.Snapshots()
}

func (g *Generator) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func (g *Generator) pickEntry() entry {
	x := g.rng.Float64() * g.entrySum
	for _, e := range g.entries {
		if x < e.share {
			return e
		}
		x -= e.share
	}
	return g.entries[len(g.entries)-1]
}

// pickVersion chooses among the versions serving at elapsed, by weight.
func (g *Generator) pickVersion(s *Service, elapsed time.Duration) string {
	total := 0.0
	for i := range s.Versions {
		total += s.Versions[i].weight(elapsed)
	}
	if total == 0 {
		return s.Versions[0].Name
	}
	x := g.rng.Float64() * total
	last := s.Versions[0].Name
	for i := range s.Versions {
		w := s.Versions[i].weight(elapsed)
		if w == 0 {
			continue
		}
		if x < w {
			return s.Versions[i].Name
		}
		x -= w
		last = s.Versions[i].Name
	}
	return last
}

func (g *Generator) resource(s *Service, version string, instance int) *resource.Resource {
	key := fmt.Sprintf("%s\x00%s\x00%d", s.Name, version, instance)
	if r, ok := g.resources[key]; ok {
		return r
	}
	attrs := []attribute.KeyValue{
		attribute.String("service.name", s.Name),
		attribute.String("service.version", version),
		attribute.String("service.instance.id", fmt.Sprintf("%s-%s-%d", s.Name, version, instance)),
		attribute.String("telemetry.sdk.name", "spanwatch-loadgen"),
	}
	if s.Namespace != "" {
		attrs = append(attrs, attribute.String("service.namespace", s.Namespace))
	}
	r := resource.NewSchemaless(attrs...)
	g.resources[key] = r
	return r
}

func (g *Generator) sample(l Latency) time.Duration {
	switch {
	case l.Fixed > 0:
		return l.Fixed
	case l.Median > 0:
		return time.Duration(float64(l.Median) * math.Exp(l.Sigma*g.rng.NormFloat64()))
	}
	return 0
}

// effect returns the latency factor and error rate of the changes active
// for (service, version, operation, call).
func (g *Generator) effect(elapsed time.Duration, service, version, op, call string, errRate float64) (float64, float64) {
	factor := 1.0
	for _, c := range g.sc.Changes {
		if c.At > elapsed || c.Service != service || (c.Version != "" && c.Version != version) ||
			(c.Operation != "" && c.Operation != op) || c.Call != call {
			continue
		}
		if c.LatencyFactor > 0 {
			factor *= c.LatencyFactor
		}
		if c.ErrorRate != nil {
			errRate = *c.ErrorRate
		}
	}
	return factor, errRate
}

// builder builds one trace on a time axis starting at 0 (stored as Unix
// nanoseconds, shifted when done).
type builder struct {
	g       *Generator
	elapsed time.Duration
	stubs   []tracetest.SpanStub
}

func at(d time.Duration) time.Time { return time.Unix(0, int64(d)) }

func (b *builder) spanID() trace.SpanID {
	var id trace.SpanID
	for id == (trace.SpanID{}) {
		b.g.fill(id[:])
	}
	return id
}

var kinds = map[string]trace.SpanKind{"server": trace.SpanKindServer, "consumer": trace.SpanKindConsumer, "internal": trace.SpanKindInternal}

// serve adds the span of op in service starting at t and its calls; it
// returns the end and whether it failed.
func (b *builder) serve(service string, op *Operation, tid trace.TraceID, parent trace.SpanID, t time.Duration) (time.Duration, bool) {
	g := b.g
	s := g.services[service]
	version := g.pickVersion(s, b.elapsed)
	res := g.resource(s, version, g.rng.IntN(s.Instances))
	id := b.spanID()
	factor, errRate := g.effect(b.elapsed, service, version, op.Name, "", op.ErrorRate)
	self := time.Duration(float64(g.sample(op.Latency)) * factor)
	start := t
	t += self / 2
	failed := false
	for _, c := range op.Calls {
		var cf bool
		t, cf = b.call(s, version, res, op, c, tid, id, t)
		failed = failed || cf
	}
	t += self - self/2
	if g.rng.Float64() < errRate {
		failed = true
	}
	attrs := make([]attribute.KeyValue, 0, len(op.Attributes))
	for k, v := range op.Attributes {
		attrs = append(attrs, attribute.String(k, v))
	}
	b.stubs = append(b.stubs, stub(tid, id, parent, op.Name, kinds[op.Kind], start, t, failed, attrs, res))
	return t, failed
}

// call adds a client span for c starting at t, and for a service call the
// callee's spans.
func (b *builder) call(s *Service, version string, res *resource.Resource, op *Operation, c Call, tid trace.TraceID, parent trace.SpanID, t time.Duration) (time.Duration, bool) {
	g := b.g
	id := b.spanID()
	start := t
	var failed bool
	var attrs []attribute.KeyValue
	name := c.Name
	if c.DB != "" {
		factor, errRate := g.effect(b.elapsed, s.Name, version, op.Name, c.Name, c.ErrorRate)
		t += time.Duration(float64(g.sample(c.Latency)) * factor)
		failed = g.rng.Float64() < errRate
		attrs = []attribute.KeyValue{attribute.String("db.system", c.DB)}
	} else {
		if name == "" {
			name = c.Operation
		}
		factor, errRate := g.effect(b.elapsed, s.Name, version, op.Name, c.Operation, c.ErrorRate)
		net := time.Duration(float64(g.sample(Latency{Median: 300 * time.Microsecond, Sigma: 0.3})) * factor)
		t += net / 2
		var cf bool
		t, cf = b.serve(c.Service, g.ops[c.Service+"\x00"+c.Operation], tid, id, t)
		t += net - net/2
		failed = cf || g.rng.Float64() < errRate
		attrs = []attribute.KeyValue{attribute.String("server.address", c.Service), attribute.String("peer.service", c.Service)}
	}
	b.stubs = append(b.stubs, stub(tid, id, parent, name, trace.SpanKindClient, start, t, failed, attrs, res))
	return t, failed
}

func stub(tid trace.TraceID, id, parent trace.SpanID, name string, kind trace.SpanKind, start, end time.Duration,
	failed bool, attrs []attribute.KeyValue, res *resource.Resource) tracetest.SpanStub {
	st := tracetest.SpanStub{
		Name:        name,
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: id, TraceFlags: trace.FlagsSampled}),
		SpanKind:    kind,
		StartTime:   at(start),
		EndTime:     at(end),
		Attributes:  attrs,
		Resource:    res,
	}
	if parent.IsValid() {
		st.Parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: parent, TraceFlags: trace.FlagsSampled})
	}
	if failed {
		st.Status = sdktrace.Status{Code: codes.Error, Description: "injected error"}
	}
	return st
}
