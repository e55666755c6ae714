package spanmetrics

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	numShards = 256
	maxDims   = 32
	// maxPooledSpans bounds the per-request state kept in the pool.
	maxPooledSpans = 1 << 16
)

// Options are the non-config dependencies of an Aggregator.
type Options struct {
	// Naming decides metric and label names; the zero value means
	// DefaultNamingConfig().
	Naming NamingConfig
	// Logger receives rare events (overflow started); nil discards.
	Logger *slog.Logger
	// Registerer receives self-metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type dimSpec struct {
	name   string
	def    []byte
	hasDef bool
}

// Aggregator holds the cumulative series. It is safe for concurrent use.
type Aggregator struct {
	cfg     Config
	names   *Names
	dims    []dimSpec // service.version (unless excluded) then configured dimensions
	bounds  []uint64  // classic bucket bounds in nanoseconds
	fbounds []float64 // the same in the histogram unit
	unitNs  float64   // nanoseconds per unit
	limit   int64
	expiry  int64
	native  *ExponentialConfig

	exclName, exclKind, exclStatus bool
	dimLens                        uint64 // bit n set: a dimension name has length n (< 64)

	shards  [numShards]shard
	nseries atomic.Int64
	// nativeBuckets is the number of native-histogram buckets in the last
	// snapshot, to size the next one's slab.
	nativeBuckets atomic.Int64

	overflowMu sync.Mutex
	overflow   atomic.Pointer[series]

	tmu     sync.Mutex
	targets map[string]*target

	pool   sync.Pool
	now    func() time.Time
	logger *slog.Logger
	m      *aggMetrics
}

// shard is padded to whole cache lines, as Prometheus pads its stripe
// locks: where the array starts on a line boundary, each shard has a line
// of its own. shardFields must add up the fields above the pad.
type shard struct {
	mu sync.RWMutex
	m  map[uint64]*series
	_  [(cacheLine - shardFields%cacheLine) % cacheLine]byte
}

const (
	cacheLine   = 64
	shardFields = unsafe.Sizeof(sync.RWMutex{}) + unsafe.Sizeof(map[uint64]*series(nil))
)

type series struct {
	mu       sync.Mutex
	dead     bool // removed by expiry; writers must look up again
	reported bool // included in a snapshot already
	dirty    bool // counted spans that no snapshot has seen yet
	key      string
	next     *series // hash collision chain
	counts   []uint64
	sumNs    uint64
	lastSeen int64
	created  int64
	native   *nativeHist
}

type target struct {
	attrs []Label
	refs  int
}

type aggMetrics struct {
	created       prometheus.Counter
	expired       prometheus.Counter
	overflowSpans prometheus.Counter
	invalidUTF8   prometheus.Counter
	snapshotDur   prometheus.Histogram
}

// New returns an Aggregator for cfg. cfg must be valid (see Config.Validate).
func New(cfg Config, opts Options) (*Aggregator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("spanmetrics config: %w", err)
	}
	nc := opts.Naming
	if nc.Naming == "" {
		nc.Naming = NamingOTel
	}
	if err := nc.Validate(); err != nil {
		return nil, fmt.Errorf("exposition config: %w", err)
	}
	a := &Aggregator{
		cfg:     cfg,
		limit:   int64(cfg.AggregationCardinalityLimit),
		expiry:  int64(cfg.Expiration()),
		targets: map[string]*target{},
		now:     opts.Now,
		logger:  opts.Logger,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	excluded := func(d string) bool { return slices.Contains(cfg.ExcludeDimensions, d) }
	a.exclName, a.exclKind, a.exclStatus = excluded(DimSpanName), excluded(DimSpanKind), excluded(DimStatusCode)
	if !excluded(DimServiceVersion) {
		a.dims = append(a.dims, dimSpec{name: AttrServiceVersion})
	}
	for _, d := range cfg.Dimensions {
		ds := dimSpec{name: d.Name}
		if d.Default != nil {
			ds.def, ds.hasDef = []byte(*d.Default), true
		}
		a.dims = append(a.dims, ds)
	}
	for _, d := range a.dims {
		if len(d.name) < 64 {
			a.dimLens |= 1 << len(d.name)
		}
	}
	a.unitNs = 1e6
	if cfg.Histogram.Unit == UnitSeconds {
		a.unitNs = 1e9
	}
	for _, b := range cfg.Histogram.Explicit.Buckets {
		a.bounds = append(a.bounds, uint64(b))
		a.fbounds = append(a.fbounds, float64(b)/a.unitNs)
	}
	// Without a duration histogram there is nothing to keep a native one for.
	if e := cfg.Histogram.Exponential; e.Enabled && !cfg.Histogram.Disable {
		n := DefaultExponentialConfig()
		if e.MaxSize > 0 {
			n.MaxSize = e.MaxSize
		}
		if e.Schema != nil {
			n.Schema = e.Schema
		}
		a.native = &n
	}
	a.names = newNames(&cfg, &nc, a.dims)
	a.names.excludeService = excluded(DimServiceName)
	for i := range a.shards {
		a.shards[i].m = map[uint64]*series{}
	}
	a.pool.New = func() any { return &batch{} }
	a.m = newAggMetrics(opts.Registerer, a)
	return a, nil
}

func newAggMetrics(reg prometheus.Registerer, a *Aggregator) *aggMetrics {
	m := &aggMetrics{
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_spanmetrics_series_created_total",
			Help: "Span-metric series created.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_spanmetrics_series_expired_total",
			Help: "Span-metric series removed after series_expiration without spans.",
		}),
		overflowSpans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_spanmetrics_overflow_spans_total",
			Help: "Spans counted in the otel_metric_overflow series because the cardinality limit was reached.",
		}),
		invalidUTF8: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_spanmetrics_invalid_utf8_values_total",
			Help: "Span names and attribute values with invalid UTF-8, counted with each invalid sequence replaced by U+FFFD.",
		}),
		snapshotDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spanwatch_spanmetrics_snapshot_duration_seconds",
			Help:    "Time taken to snapshot all series.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.created, m.expired, m.overflowSpans, m.invalidUTF8, m.snapshotDur,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "spanwatch_spanmetrics_active_series",
				Help: "Span-metric series currently held (the overflow series not included).",
			}, func() float64 { return float64(a.nseries.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "spanwatch_spanmetrics_cardinality_limit",
				Help: "Configured aggregation_cardinality_limit (0: unlimited).",
			}, func() float64 { return float64(a.limit) }))
	}
	return m
}

// Names returns the rendered names every sink uses.
func (a *Aggregator) Names() *Names { return a.names }

// FlushInterval is the configured snapshot interval.
func (a *Aggregator) FlushInterval() time.Duration { return a.cfg.MetricsFlushInterval }

// ActiveSeries is the number of series held, without the overflow series.
func (a *Aggregator) ActiveSeries() int { return int(a.nseries.Load()) }

// maybeDimension is a cheap filter before dimensionIndex: whether some
// dimension's name has the length of k.
func (a *Aggregator) maybeDimension(k []byte) bool {
	return len(k) < 64 && a.dimLens&(1<<len(k)) != 0 || len(k) >= 64
}

// dimensionIndex returns the index of attribute key k among the dimensions,
// or -1. Dimension lists are short; a linear scan beats hashing here.
func (a *Aggregator) dimensionIndex(k []byte) int {
	for i := range a.dims {
		if a.dims[i].name == string(k) {
			return i
		}
	}
	return -1
}

func (a *Aggregator) getBatch() *batch {
	b := a.pool.Get().(*batch)
	b.reset(len(a.dims))
	return b
}

func (a *Aggregator) putBatch(b *batch) {
	if cap(b.spans) > maxPooledSpans {
		return
	}
	b.clear()
	a.pool.Put(b)
}

// commit adds every span of b to its series. b has been fully decoded, so a
// request is counted whole or not at all.
func (a *Aggregator) commit(b *batch) {
	if b.invalidUTF8 > 0 {
		a.m.invalidUTF8.Add(float64(b.invalidUTF8))
	}
	now := a.now().UnixNano()
	nd := len(a.dims)
	for i := range b.spans {
		sp := &b.spans[i]
		r := &b.res[sp.res]
		key := b.key[:0]
		// Empty values and unknown enum values render as no label, so they
		// are encoded as absent: two keys never render the same labels.
		key = appendKeyField(key, r.namespace.b, r.namespace.ok && len(r.namespace.b) > 0)
		key = appendKeyField(key, r.instance.b, r.instance.ok && len(r.instance.b) > 0)
		key = appendKeyField(key, r.service.b, true)
		key = appendKeyField(key, sp.name, !a.exclName && len(sp.name) > 0)
		key = appendKeyEnum(key, sp.kind, !a.exclKind && uint32(sp.kind) <= 5)
		key = appendKeyEnum(key, sp.status, !a.exclStatus && uint32(sp.status) <= 2)
		sd := b.spanDims[int(sp.dimOff) : int(sp.dimOff)+nd]
		rd := b.resDims[int(r.dimOff) : int(r.dimOff)+nd]
		for d := range nd {
			v := sd[d]
			if !v.ok {
				v = rd[d]
			}
			if !v.ok && a.dims[d].hasDef {
				v = valRef{b: a.dims[d].def, ok: true}
			}
			key = appendKeyField(key, v.b, v.ok && len(v.b) > 0)
		}
		b.key = key
		h := xxhash.Sum64(key)
		for {
			s := a.lookup(h, key)
			if s == nil {
				s = a.create(h, key, b, r, now)
			}
			if a.observe(s, sp.durNs, now) {
				break
			}
			// s expired between lookup and observe: look up again.
		}
	}
}

func (a *Aggregator) lookup(h uint64, key []byte) *series {
	sh := &a.shards[h%numShards]
	sh.mu.RLock()
	s := sh.m[h]
	for s != nil && s.key != string(key) {
		s = s.next
	}
	sh.mu.RUnlock()
	return s
}

func (a *Aggregator) create(h uint64, key []byte, b *batch, r *resRec, now int64) *series {
	sh := &a.shards[h%numShards]
	sh.mu.Lock()
	head := sh.m[h]
	for s := head; s != nil; s = s.next {
		if s.key == string(key) {
			sh.mu.Unlock()
			return s
		}
	}
	if a.limit > 0 && a.nseries.Load() >= a.limit {
		sh.mu.Unlock()
		return a.overflowSeries(now)
	}
	s := a.newSeries(string(key), now)
	s.next = head
	sh.m[h] = s
	a.nseries.Add(1)
	sh.mu.Unlock()
	a.m.created.Inc()
	a.addTargetRef(s.key[:targetPrefixLen(s.key)], b, r)
	return s
}

func (a *Aggregator) newSeries(key string, now int64) *series {
	// The classic buckets are kept even when the histogram is not exposed:
	// their total is the calls counter.
	s := &series{key: key, created: now, lastSeen: now, counts: make([]uint64, len(a.bounds)+1)}
	if a.native != nil {
		s.native = newNativeHist(int32(*a.native.Schema))
	}
	return s
}

func (a *Aggregator) overflowSeries(now int64) *series {
	a.m.overflowSpans.Inc()
	if o := a.overflow.Load(); o != nil {
		return o
	}
	a.overflowMu.Lock()
	defer a.overflowMu.Unlock()
	if o := a.overflow.Load(); o != nil {
		return o
	}
	o := a.newSeries("", now)
	a.overflow.Store(o)
	a.logger.Warn("cardinality limit reached; further new series are counted in the overflow series",
		"limit", a.limit, "label", `otel_metric_overflow="true"`)
	return o
}

// observe records one span of duration d in s. It returns false when s was
// removed by expiry and the caller must look up again.
func (a *Aggregator) observe(s *series, d uint64, now int64) bool {
	i := bucketIndex(a.bounds, d)
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return false
	}
	s.counts[i]++
	s.sumNs += d
	s.dirty = true
	if now > s.lastSeen {
		s.lastSeen = now
	}
	if s.native != nil {
		s.native.observe(float64(d)/a.unitNs, a.native.MaxSize)
	}
	s.mu.Unlock()
	return true
}

// bucketIndex returns the index of the first bound >= d (le is inclusive),
// or len(bounds) for the +Inf bucket.
func bucketIndex(bounds []uint64, d uint64) int {
	lo, hi := 0, len(bounds)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bounds[m] < d {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (a *Aggregator) addTargetRef(tkey string, b *batch, r *resRec) {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	if t, ok := a.targets[tkey]; ok {
		t.refs++
		return
	}
	a.targets[tkey] = &target{attrs: b.targetAttributes(r), refs: 1}
}

func (a *Aggregator) dropTargetRef(tkey string) {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	if t, ok := a.targets[tkey]; ok {
		t.refs--
		if t.refs <= 0 {
			delete(a.targets, tkey)
		}
	}
}

func xxhashString(s string) uint64 { return xxhash.Sum64String(s) }
