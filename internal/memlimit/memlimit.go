// Package memlimit keeps spanwatch inside its memory budget, in the spirit
// of the OpenTelemetry Collector's memory_limiter. From one limit (the
// container's cgroup limit or --memory.limit) it derives the Go runtime's
// soft memory limit (GOMEMLIMIT, the hard limit here) and a lower soft
// limit. A check loop reads the heap from runtime/metrics (cheap: no
// stop-the-world, unlike runtime.ReadMemStats); while the heap is above the
// soft limit, Admit refuses new work, and above the hard limit the loop
// forces a garbage collection. Admission resumes by itself once the heap is
// back under the soft limit.
//
// The package decides; callers at the edges (OTLP receivers, the query API)
// turn a refusal into their protocol's retryable error. It holds no HTTP or
// gRPC code.
package memlimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
)

// Sources of the limit, the source label of spanwatch_memory_limit_bytes.
const (
	SourceCgroup = "cgroup"
	SourceFlag   = "flag"
	SourceNone   = "none"
)

// Auto is the --memory.limit value that reads the cgroup limit.
const Auto = "auto"

// Defaults.
const (
	// DefaultHardRatio is the hard limit (and GOMEMLIMIT) as a fraction of
	// the limit, as Prometheus's --auto-gomemlimit.ratio.
	DefaultHardRatio = 0.9
	// DefaultSoftRatio is the soft limit as a fraction of the limit: the
	// Collector's default spike allowance is 20 %.
	DefaultSoftRatio = 0.8
	// DefaultCheckInterval is how often the heap is read.
	DefaultCheckInterval = 250 * time.Millisecond
	// minForcedGCInterval bounds how often a collection is forced.
	minForcedGCInterval = time.Second
)

// ErrOverLimit is returned by Admit while the heap is above the soft limit.
var ErrOverLimit = errors.New("memory limit reached")

// OverLimitError says how much is in use; it matches ErrOverLimit.
type OverLimitError struct {
	// Heap is the heap in use at the last check, in bytes.
	Heap uint64
	// Soft is the soft limit in bytes.
	Soft uint64
}

func (e *OverLimitError) Error() string {
	return fmt.Sprintf("%s: heap %s is above the soft limit %s; retry later",
		ErrOverLimit, units.Base2Bytes(e.Heap).String(), units.Base2Bytes(e.Soft).String())
}

// Is makes errors.Is(err, ErrOverLimit) true.
func (e *OverLimitError) Is(target error) bool { return target == ErrOverLimit }

// Resolve turns a --memory.limit value into bytes: "auto" reads the cgroup
// memory limit (0 and SourceNone without one), "0" or "none" disables the
// limit, anything else is a size in bytes such as 2GiB, 512MB or 1073741824
// (units are powers of 1024, as in every size flag of spanwatch).
func Resolve(flag string) (limit uint64, source string, err error) {
	switch strings.ToLower(strings.TrimSpace(flag)) {
	case "", Auto:
		n, err := memlimit.FromCgroup()
		if err != nil || n == 0 {
			return 0, SourceNone, nil //nolint:nilerr // no cgroup limit: none
		}
		return n, SourceCgroup, nil
	case "0", "none":
		return 0, SourceNone, nil
	}
	if n, err := strconv.ParseUint(flag, 10, 64); err == nil {
		return n, SourceFlag, nil
	}
	if b, err := units.ParseBase2Bytes(flag); err == nil && b > 0 {
		return uint64(b), SourceFlag, nil
	}
	return 0, "", fmt.Errorf("invalid memory limit %q: use auto, none or a size such as 2GiB", flag)
}

// Options configure a Limiter.
type Options struct {
	// Limit is the memory budget in bytes (a container's limit); 0 turns
	// the limiter off (Admit always admits).
	Limit uint64
	// Source says where Limit came from (SourceCgroup, SourceFlag).
	Source string
	// HardRatio of Limit is the hard limit, also given to the Go runtime
	// as its soft memory limit by SetGoMemLimit (default 0.9).
	HardRatio float64
	// SoftRatio of Limit is the soft limit above which work is refused
	// (default 0.8).
	SoftRatio float64
	// CheckInterval is how often the heap is read (default 250ms).
	CheckInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives spanwatch_memory_* self-metrics; nil registers
	// nothing.
	Registerer prometheus.Registerer

	// ReadHeap returns the live heap as of the last garbage collection
	// and the heap holding objects now (live or not yet swept); nil reads
	// runtime/metrics. Tests set it.
	ReadHeap func() (live, objects uint64)
	// GC forces a collection; nil is runtime.GC.
	GC func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter decides whether new work may start.
type Limiter struct {
	opts       Options
	soft, hard uint64
	logger     *slog.Logger
	over       atomic.Bool
	heap       atomic.Uint64

	mu     sync.Mutex // serialises Check
	lastGC time.Time

	refused  *prometheus.CounterVec
	forcedGC prometheus.Counter
}

// New returns a Limiter. A nil *Limiter (Options.Limit 0 gives one) admits
// everything.
func New(o Options) (*Limiter, error) {
	if o.HardRatio == 0 {
		o.HardRatio = DefaultHardRatio
	}
	if o.SoftRatio == 0 {
		o.SoftRatio = DefaultSoftRatio
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.HardRatio <= 0 || o.HardRatio > 1 {
		return nil, fmt.Errorf("memory limit: hard ratio must be in (0, 1], got %g", o.HardRatio)
	}
	if o.SoftRatio <= 0 || o.SoftRatio > o.HardRatio {
		return nil, fmt.Errorf("memory limit: soft ratio must be in (0, %g], got %g", o.HardRatio, o.SoftRatio)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadHeap == nil {
		o.ReadHeap = readHeap
	}
	if o.GC == nil {
		o.GC = runtime.GC
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Source == "" {
		o.Source = SourceFlag
	}
	l := &Limiter{
		opts:   o,
		logger: o.Logger,
		soft:   uint64(float64(o.Limit) * o.SoftRatio),
		hard:   uint64(float64(o.Limit) * o.HardRatio),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanwatch_memory_limit_refused_total",
			Help: "Requests refused because the heap was above the soft memory limit, by what was refused (otlp, query).",
		}, []string{"component"}),
		forcedGC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_memory_forced_gc_total",
			Help: "Garbage collections forced because the heap was above the hard memory limit.",
		}),
	}
	for _, c := range []string{"otlp", "query"} {
		l.refused.WithLabelValues(c)
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(l.refused, l.forcedGC,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "spanwatch_memory_limit_bytes",
				Help:        "The memory budget (--memory.limit, or the cgroup limit); 0: none.",
				ConstLabels: prometheus.Labels{"source": o.Source},
			}, func() float64 { return float64(o.Limit) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "spanwatch_memory_soft_limit_bytes",
				Help: "Heap size above which OTLP requests and queries are refused.",
			}, func() float64 { return float64(l.soft) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "spanwatch_memory_hard_limit_bytes",
				Help: "Heap size above which a garbage collection is forced; also the Go runtime's GOMEMLIMIT.",
			}, func() float64 { return float64(l.hard) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "spanwatch_memory_heap_bytes",
				Help: "Heap in use at the last check of the memory limiter.",
			}, func() float64 { return float64(l.heap.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "spanwatch_memory_limit_exceeded",
				Help: "1 while the heap is above the soft limit and new work is refused.",
			}, func() float64 {
				if l.over.Load() {
					return 1
				}
				return 0
			}))
	}
	if o.Limit == 0 {
		return nil, nil
	}
	return l, nil
}

// SoftLimit is the heap size above which Admit refuses, in bytes.
func (l *Limiter) SoftLimit() uint64 {
	if l == nil {
		return 0
	}
	return l.soft
}

// HardLimit is the heap size above which a collection is forced, in bytes.
func (l *Limiter) HardLimit() uint64 {
	if l == nil {
		return 0
	}
	return l.hard
}

// Limit is the budget the limits derive from.
func (l *Limiter) Limit() uint64 {
	if l == nil {
		return 0
	}
	return l.opts.Limit
}

// SetGoMemLimit gives the hard limit to the Go runtime (debug.SetMemoryLimit)
// unless the GOMEMLIMIT environment variable is set, which wins. It returns
// the runtime's limit afterwards.
func (l *Limiter) SetGoMemLimit(getenv func(string) string, set func(int64) int64) int64 {
	if l == nil || getenv("GOMEMLIMIT") != "" {
		return set(-1)
	}
	set(int64(l.hard))
	return set(-1)
}

// Admit returns nil when new work may start, and an *OverLimitError while
// the heap is above the soft limit. component (otlp, query) is counted in
// spanwatch_memory_limit_refused_total. It only reads an atomic.
func (l *Limiter) Admit(component string) error {
	if l == nil || !l.over.Load() {
		return nil
	}
	l.refused.WithLabelValues(component).Inc()
	return &OverLimitError{Heap: l.heap.Load(), Soft: l.soft}
}

// RetryAfter is the delay suggested to refused clients.
func (l *Limiter) RetryAfter() time.Duration {
	if l == nil {
		return 0
	}
	return max(time.Second, 4*l.opts.CheckInterval)
}

// Check reads the heap once and updates the admission state. The heap in
// use is the live heap the last collection found; when the objects not yet
// collected reach the hard limit, a collection is forced (at most once a
// second) and the heap read again, and what is still there counts.
// Admission stops above the soft limit and resumes below it.
func (l *Limiter) Check() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	live, objects := l.opts.ReadHeap()
	if objects >= l.hard {
		if now := l.opts.Now(); now.Sub(l.lastGC) >= minForcedGCInterval {
			l.lastGC = now
			l.forcedGC.Inc()
			l.opts.GC()
			live, objects = l.opts.ReadHeap()
		}
	}
	heap := live
	if objects >= l.hard {
		heap = objects
	}
	l.heap.Store(heap)
	over := heap >= l.soft
	switch was := l.over.Swap(over); {
	case over && !was:
		l.logger.Warn("memory above the soft limit: refusing OTLP requests and queries until it falls",
			"heap", units.Base2Bytes(heap).String(), "soft_limit", units.Base2Bytes(l.soft).String(),
			"hard_limit", units.Base2Bytes(l.hard).String())
	case !over && was:
		l.logger.Info("memory below the soft limit again: accepting OTLP requests and queries",
			"heap", units.Base2Bytes(heap).String(), "soft_limit", units.Base2Bytes(l.soft).String())
	}
}

// Run checks every CheckInterval until ctx ends.
func (l *Limiter) Run(ctx context.Context) {
	if l == nil {
		return
	}
	t := time.NewTicker(l.opts.CheckInterval)
	defer t.Stop()
	for {
		l.Check()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// The heap readings: the live heap marked by the last collection, and the
// heap holding objects, live or not yet swept (what the Collector's
// memory_limiter reads as MemStats.Alloc), without ReadMemStats'
// stop-the-world. The unused rest of the heap and memory returned to the
// OS are not counted.
const (
	liveMetric    = "/gc/heap/live:bytes"
	objectsMetric = "/memory/classes/heap/objects:bytes"
)

var samplePool = sync.Pool{New: func() any {
	s := make([]metrics.Sample, 2)
	s[0].Name, s[1].Name = liveMetric, objectsMetric
	return &s
}}

func readHeap() (live, objects uint64) {
	sp := samplePool.Get().(*[]metrics.Sample)
	defer samplePool.Put(sp)
	metrics.Read(*sp)
	u := func(v metrics.Value) uint64 {
		if v.Kind() == metrics.KindUint64 {
			return v.Uint64()
		}
		return 0
	}
	return u((*sp)[0].Value), u((*sp)[1].Value)
}
