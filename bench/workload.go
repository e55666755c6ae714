package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// WorkloadConfig shapes the realistic traffic of the throughput benchmark.
type WorkloadConfig struct {
	// Services is the number of distinct services (one resource each).
	Services int
	// Operations is the number of span names per service.
	Operations int
	// Requests is the number of distinct pre-built requests, replayed round-robin.
	Requests int
	// SpansPerRequest is the number of spans in each request.
	SpansPerRequest int
	// ResourcesPerRequest is how many services share one request
	// (SpansPerRequest/ResourcesPerRequest spans each).
	ResourcesPerRequest int
	// Seed makes the workload reproducible.
	Seed uint64
}

// DefaultWorkloadConfig returns 20 services × 25 operations, 16 requests of
// 1000 spans from 10 services each.
func DefaultWorkloadConfig() WorkloadConfig {
	return WorkloadConfig{
		Services:            20,
		Operations:          25,
		Requests:            16,
		SpansPerRequest:     1000,
		ResourcesPerRequest: 10,
		Seed:                1,
	}
}

// Workload is a set of serialized OTLP ExportTraceServiceRequests.
type Workload struct {
	// Requests are the serialized requests, all SpansPerRequest spans long.
	Requests [][]byte
	// SpansPerRequest is the number of spans in every request.
	SpansPerRequest int
	// WireBytes is the total size of Requests.
	WireBytes int
}

// Spans returns the number of spans over all requests.
func (w *Workload) Spans() int { return len(w.Requests) * w.SpansPerRequest }

// BytesPerSpan returns the average serialized size of one span, resource and
// scope overhead included.
func (w *Workload) BytesPerSpan() float64 { return float64(w.WireBytes) / float64(w.Spans()) }

// operation is one span name of every service.
type operation struct {
	name   string
	method string // "" for internal spans: the http.method default applies
	route  string
	kind   ptrace.SpanKind
	median time.Duration
}

// operations returns n operations: HTTP server routes, HTTP client calls and
// a few internal spans, with medians spread over the recipe's buckets.
func operations(n int) []operation {
	resources := []string{"items", "users", "orders", "carts", "payments", "invoices", "reviews", "stock"}
	methods := []string{"GET", "GET", "POST", "GET", "PUT", "DELETE"}
	ops := make([]operation, n)
	for i := range ops {
		res := resources[i%len(resources)]
		m := methods[i%len(methods)]
		route := "/api/v1/" + res
		if m != "POST" {
			route += "/{id}"
		}
		// 1ms … ~1s, log-spaced over the operations.
		median := time.Duration(float64(time.Millisecond) * math.Pow(1000, float64(i)/float64(max(n-1, 1))))
		op := operation{name: m + " " + route, method: m, route: route, kind: ptrace.SpanKindServer, median: median}
		switch {
		case i%8 == 7:
			op = operation{name: "render " + res, route: route, kind: ptrace.SpanKindInternal, median: median}
		case i%8 >= 5:
			op.kind = ptrace.SpanKindClient
			op.name = m // HTTP client spans are named by method in the semantic conventions
		}
		ops[i] = op
	}
	return ops
}

// httpOutcome is an HTTP status code with its span status.
type httpOutcome struct {
	code   int64
	status ptrace.StatusCode
	weight int
}

var outcomes = []httpOutcome{
	{200, ptrace.StatusCodeUnset, 72},
	{201, ptrace.StatusCodeUnset, 4},
	{304, ptrace.StatusCodeUnset, 4},
	{401, ptrace.StatusCodeUnset, 3},
	{404, ptrace.StatusCodeUnset, 7},
	{500, ptrace.StatusCodeError, 6},
	{503, ptrace.StatusCodeError, 4},
}

func pickOutcome(r *rand.Rand) httpOutcome {
	x := r.IntN(100)
	for _, o := range outcomes {
		if x < o.weight {
			return o
		}
		x -= o.weight
	}
	return outcomes[0]
}

// service describes one service's resource.
type service struct {
	name       string
	namespace  string
	deployment string
	host       string
}

func services(n int) []service {
	namespaces := []string{"shop", "payments", "platform"}
	s := make([]service, n)
	for i := range s {
		name := fmt.Sprintf("svc-%02d", i)
		s[i] = service{
			name:       name,
			namespace:  namespaces[i%len(namespaces)],
			deployment: name,
			host:       fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", i/8, 10+i),
		}
	}
	return s
}

// fillResource sets the resource and scope of one service's spans.
func fillResource(rs ptrace.ResourceSpans, s service) ptrace.SpanSlice {
	a := rs.Resource().Attributes()
	a.EnsureCapacity(8)
	a.PutStr("service.name", s.name)
	a.PutStr("service.version", "1.14.2")
	a.PutStr("k8s.deployment.name", s.deployment)
	a.PutStr("k8s.namespace", s.namespace)
	a.PutStr("host.name", s.host)
	a.PutStr("telemetry.sdk.name", "opentelemetry")
	a.PutStr("telemetry.sdk.language", "go")
	a.PutStr("telemetry.sdk.version", "1.47.0")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.62.0")
	return ss.Spans()
}

// spanWriter fills spans with realistic ids, timestamps and attributes.
type spanWriter struct {
	r       *rand.Rand
	traceID pcommon.TraceID
	left    int // spans left in the current trace
	now     time.Time
}

func newSpanWriter(seed uint64) *spanWriter {
	return &spanWriter{
		r:   rand.New(rand.NewPCG(seed, 0x5eed)),
		now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func (w *spanWriter) id8() pcommon.SpanID {
	var id pcommon.SpanID
	binary.LittleEndian.PutUint64(id[:], w.r.Uint64()|1)
	return id
}

// write fills sp; peer is the service called (for net.peer.name).
func (w *spanWriter) write(sp ptrace.Span, name string, op operation, o httpOutcome, peer service) {
	if w.left == 0 {
		binary.LittleEndian.PutUint64(w.traceID[:8], w.r.Uint64())
		binary.LittleEndian.PutUint64(w.traceID[8:], w.r.Uint64()|1)
		w.left = 4 + w.r.IntN(12)
	}
	w.left--
	sp.SetTraceID(w.traceID)
	sp.SetSpanID(w.id8())
	sp.SetParentSpanID(w.id8())
	sp.SetName(name)
	sp.SetKind(op.kind)

	// Log-normal around the operation's median; errors are slower.
	d := float64(op.median) * math.Exp(0.6*w.r.NormFloat64())
	if o.status == ptrace.StatusCodeError {
		d *= 2
	}
	start := w.now.Add(time.Duration(w.r.IntN(int(10 * time.Second))))
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(d))))
	if o.status != ptrace.StatusCodeUnset {
		sp.Status().SetCode(o.status)
	}

	a := sp.Attributes()
	a.EnsureCapacity(10)
	if op.kind == ptrace.SpanKindInternal {
		// No HTTP attributes: http.method takes its default, http.status_code is omitted.
		a.PutStr("code.function", "Render")
		a.PutStr("code.namespace", "github.com/example/shop/internal/view")
		a.PutStr("code.filepath", "/src/internal/view/render.go")
		a.PutInt("code.lineno", int64(40+w.r.IntN(200)))
		a.PutStr("thread.name", "main")
		a.PutInt("items.count", int64(w.r.IntN(100)))
		a.PutStr("template.name", op.route)
		a.PutBool("cache.hit", w.r.IntN(2) == 0)
		return
	}
	a.PutStr("http.method", op.method)
	a.PutInt("http.status_code", o.code)
	a.PutStr("http.route", op.route)
	a.PutStr("http.target", fmt.Sprintf("%s?page=%d", op.route, w.r.IntN(50)))
	a.PutStr("http.scheme", "http")
	a.PutStr("http.flavor", "1.1")
	a.PutStr("net.peer.name", peer.name+"."+peer.namespace+".svc.cluster.local")
	a.PutInt("net.peer.port", 8080)
	a.PutStr("http.user_agent", "Go-http-client/1.1")
	a.PutInt("http.response_content_length", int64(w.r.IntN(20000)))
}

// NewWorkload builds the requests of the throughput benchmark. Every request
// carries SpansPerRequest spans from ResourcesPerRequest services (one
// resource and one scope each); the operation, outcome and duration of each
// span are drawn at random, so a series appears in several requests.
func NewWorkload(cfg WorkloadConfig) (*Workload, error) {
	if cfg.Services <= 0 || cfg.Operations <= 0 || cfg.Requests <= 0 || cfg.SpansPerRequest <= 0 ||
		cfg.ResourcesPerRequest <= 0 || cfg.ResourcesPerRequest > cfg.Services {
		return nil, fmt.Errorf("invalid workload config %+v", cfg)
	}
	svcs := services(cfg.Services)
	ops := operations(cfg.Operations)
	w := newSpanWriter(cfg.Seed)
	wl := &Workload{SpansPerRequest: cfg.SpansPerRequest}
	for r := range cfg.Requests {
		td := ptrace.NewTraces()
		td.ResourceSpans().EnsureCapacity(cfg.ResourcesPerRequest)
		for k := range cfg.ResourcesPerRequest {
			s := svcs[(r*cfg.ResourcesPerRequest+k)%len(svcs)]
			spans := fillResource(td.ResourceSpans().AppendEmpty(), s)
			n := cfg.SpansPerRequest / cfg.ResourcesPerRequest
			if k < cfg.SpansPerRequest%cfg.ResourcesPerRequest {
				n++
			}
			spans.EnsureCapacity(n)
			for range n {
				op := ops[w.r.IntN(len(ops))]
				o := pickOutcome(w.r)
				if op.kind == ptrace.SpanKindInternal && o.status != ptrace.StatusCodeError {
					o.status = ptrace.StatusCodeUnset
				}
				w.write(spans.AppendEmpty(), op.name, op, o, svcs[w.r.IntN(len(svcs))])
			}
		}
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			return nil, fmt.Errorf("marshalling request %d: %w", r, err)
		}
		wl.Requests = append(wl.Requests, b)
		wl.WireBytes += len(b)
	}
	return wl, nil
}

// SeriesFixture produces requests that, together, create exactly N distinct
// series on both implementations: every series has a span name of its own and
// otherwise the same dimensions (SERVER, UNSET, GET, 200). Requests are built
// on demand so that no serialized request is alive while memory is measured.
type SeriesFixture struct {
	// N is the number of series over all requests.
	N int
	// SpansPerSeries is how many spans each series gets: with 1 its
	// histograms hold one observation; with more, durations spread
	// log-normally (σ 0.6 around 20 ms, as in the workload), so a native
	// histogram fills the buckets a busy series has. Series take turns:
	// every series gets its k-th span before any gets its k+1-th.
	SpansPerSeries int
	// SpansPerRequest is the size of each request but possibly the last.
	SpansPerRequest int
	svcs            []service
}

// NewSeriesFixture returns a fixture of n series with one span each, spread
// over 20 services, in requests of 1000 spans.
func NewSeriesFixture(n int) *SeriesFixture {
	return NewFilledSeriesFixture(n, 1)
}

// NewFilledSeriesFixture returns a fixture of n series with spansPerSeries
// spans each, spread over 20 services, in requests of 1000 spans.
func NewFilledSeriesFixture(n, spansPerSeries int) *SeriesFixture {
	return &SeriesFixture{N: n, SpansPerSeries: max(spansPerSeries, 1), SpansPerRequest: 1000, svcs: services(20)}
}

// Spans returns the number of spans over all requests.
func (f *SeriesFixture) Spans() int { return f.N * max(f.SpansPerSeries, 1) }

// Requests returns the number of requests.
func (f *SeriesFixture) Requests() int {
	return (f.Spans() + f.SpansPerRequest - 1) / f.SpansPerRequest
}

// Request builds and serializes request i (0 ≤ i < Requests()).
func (f *SeriesFixture) Request(i int) ([]byte, error) {
	first := i * f.SpansPerRequest
	last := min(first+f.SpansPerRequest, f.Spans())
	if first >= last {
		return nil, fmt.Errorf("request %d out of range", i)
	}
	w := newSpanWriter(uint64(i) + 1000)
	td := ptrace.NewTraces()
	byService := make([]ptrace.SpanSlice, len(f.svcs))
	have := make([]bool, len(f.svcs))
	for k := first; k < last; k++ {
		g := k % f.N
		si := g % len(f.svcs)
		if !have[si] {
			byService[si] = fillResource(td.ResourceSpans().AppendEmpty(), f.svcs[si])
			have[si] = true
		}
		route := fmt.Sprintf("/api/v1/op%07d/{id}", g)
		op := operation{name: "GET " + route, method: "GET", route: route, kind: ptrace.SpanKindServer, median: 20 * time.Millisecond}
		w.write(byService[si].AppendEmpty(), op.name, op, outcomes[0], f.svcs[(si+1)%len(f.svcs)])
	}
	return ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
}
