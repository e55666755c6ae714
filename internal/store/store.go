// Package store owns the embedded Prometheus TSDB: opening it at the
// storage path with retention and WAL, appending every span-metrics
// snapshot, and closing it. It is the only importer of prometheus/tsdb; the
// rest of spanwatch sees a storage.Queryable (and, for rules, a
// storage.AppendableV2). Write errors never crash the process: they are
// logged, counted and reported to a health callback.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// Options configure the store.
type Options struct {
	// Path is the TSDB directory.
	Path string
	// Retention is how long samples are kept.
	Retention time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives spanwatch_store_* and the TSDB's own metrics;
	// nil registers nothing.
	Registerer prometheus.Registerer
	// OnHealth is called with the error of a failed write, and with nil when
	// writes succeed again. nil ignores.
	OnHealth func(error)
}

// DefaultOptions returns ./data and 15 days.
func DefaultOptions() Options {
	return Options{Path: "data", Retention: 15 * 24 * time.Hour}
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Path == "" {
		return errors.New("storage path must not be empty")
	}
	if o.Retention < time.Hour {
		return fmt.Errorf("storage retention must be at least 1h, got %s", o.Retention)
	}
	return nil
}

type metrics struct {
	samples      prometheus.Counter
	failed       *prometheus.CounterVec
	commits      prometheus.Counter
	commitErrors prometheus.Counter
	appendDur    prometheus.Histogram
	healthy      prometheus.Gauge
}

// Store is the embedded TSDB with the snapshot appender.
type Store struct {
	db     *tsdb.DB
	app    storage.AppendableV2 // db, or a failing one in tests
	logger *slog.Logger
	onHlth func(error)
	m      *metrics

	mu         sync.Mutex // serialises ConsumeSnapshot and Close
	closed     bool
	refs       map[string][]storage.SeriesRef // series key → ref per sample index
	targetRefs map[string]storage.SeriesRef   // target labels → ref
	lastErr    error
	scratch    labels.ScratchBuilder
}

// Open opens (or creates) the TSDB at opts.Path, replaying its WAL.
func Open(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	to := tsdb.DefaultOptions()
	to.RetentionDuration = opts.Retention.Milliseconds()
	db, err := tsdb.Open(opts.Path, opts.Logger.With("component", "tsdb"), opts.Registerer, to, nil)
	if err != nil {
		return nil, fmt.Errorf("opening storage at %s: %w", opts.Path, err)
	}
	s := &Store{
		db:         db,
		app:        db,
		logger:     opts.Logger,
		onHlth:     opts.OnHealth,
		m:          newMetrics(opts.Registerer),
		refs:       map[string][]storage.SeriesRef{},
		targetRefs: map[string]storage.SeriesRef{},
	}
	s.m.healthy.Set(1)
	return s, nil
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_store_samples_appended_total",
			Help: "Samples appended to the embedded TSDB and committed.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanwatch_store_samples_failed_total",
			Help: "Samples the embedded TSDB refused, by reason.",
		}, []string{"reason"}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_store_commits_total",
			Help: "Snapshot appends committed.",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_store_commit_errors_total",
			Help: "Snapshot appends that could not be committed (disk full, permissions, …).",
		}),
		appendDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spanwatch_store_append_duration_seconds",
			Help:    "Time to append and commit one snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spanwatch_store_healthy",
			Help: "1 when the last snapshot was written, 0 after a write error.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.failed, m.commits, m.commitErrors, m.appendDur, m.healthy)
	}
	return m
}

// Queryable is what PromQL reads.
func (s *Store) Queryable() storage.Queryable { return s.db }

// Appendable is what rules append to (recording rules, ALERTS).
func (s *Store) Appendable() storage.AppendableV2 { return s.db }

// DB returns the TSDB, for tests and tooling.
func (s *Store) DB() *tsdb.DB { return s.db }

// Err returns the last write error, or nil.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// ConsumeSnapshot appends every sample of snap in one transaction: counters,
// classic buckets, sums and counts, native histograms, target_info, and
// staleness markers for series that went away.
func (s *Store) ConsumeSnapshot(snap *spanmetrics.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	start := time.Now()
	err := s.append(snap)
	s.m.appendDur.Observe(time.Since(start).Seconds())
	s.setHealth(err)
}

func (s *Store) setHealth(err error) {
	if err != nil {
		s.m.commitErrors.Inc()
		s.m.healthy.Set(0)
		s.logger.Error("writing snapshot to storage failed", "err", err)
	} else {
		s.m.commits.Inc()
		s.m.healthy.Set(1)
		if s.lastErr != nil {
			s.logger.Info("writing to storage works again")
		}
	}
	changed := (err == nil) != (s.lastErr == nil)
	s.lastErr = err
	if changed && s.onHlth != nil {
		s.onHlth(err)
	}
}

func (s *Store) append(snap *spanmetrics.Snapshot) error {
	app := s.app.AppenderV2(context.Background())
	n := 0
	var firstErr error
	add := func(ref storage.SeriesRef, lbls func() labels.Labels, t int64, v float64, h *histogram.Histogram) storage.SeriesRef {
		var ls labels.Labels
		if ref == 0 {
			ls = lbls()
		}
		r, err := app.Append(ref, ls, 0, t, v, h, nil, storage.AOptions{})
		if err != nil && ref != 0 {
			// The cached reference is gone (series garbage-collected from the
			// head): append by labels.
			r, err = app.Append(0, lbls(), 0, t, v, h, nil, storage.AOptions{})
		}
		if err != nil {
			s.m.failed.WithLabelValues(reason(err)).Inc()
			if firstErr == nil {
				firstErr = err
			}
			return 0
		}
		n++
		return r
	}
	t := snap.Time.UnixMilli()
	_ = snap.ForEachSample(func(ss *spanmetrics.SeriesSnapshot, idx int, ts int64, v float64, h *histogram.Histogram) error {
		refs := s.refs[ss.Key]
		if refs == nil {
			refs = make([]storage.SeriesRef, snap.NumSamples(ss))
			s.refs[ss.Key] = refs
		}
		refs[idx] = add(refs[idx], func() labels.Labels { return snap.SampleLabels(&s.scratch, ss, idx) }, ts, v, h)
		return nil
	})
	stale := math.Float64frombits(value.StaleNaN)
	_ = snap.ForEachStale(func(key string, idx int) error {
		gone := &spanmetrics.SeriesSnapshot{Key: key}
		var h *histogram.Histogram
		v := stale
		if idx == len(snap.Bounds)+4 {
			h, v = &histogram.Histogram{Sum: stale}, 0
		}
		add(s.refs[key][idx], func() labels.Labels { return snap.SampleLabels(&s.scratch, gone, idx) }, t, v, h)
		return nil
	})
	for _, g := range snap.Gone {
		delete(s.refs, g.Key)
	}
	for i := range snap.Targets {
		tl := snap.TargetLabels(&s.scratch, &snap.Targets[i])
		key := tl.String()
		s.targetRefs[key] = add(s.targetRefs[key], func() labels.Labels { return tl }, t, 1, nil)
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("committing %d samples: %w", n, err)
	}
	s.m.samples.Add(float64(n))
	if firstErr != nil {
		// Single refused samples (out of order after a clock jump, …) are
		// counted and logged, but do not make spanwatch unready.
		s.logger.Warn("storage refused samples", "err", firstErr)
	}
	return nil
}

func reason(err error) string {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return "out_of_order"
	case errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample):
		return "out_of_bounds"
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return "duplicate"
	}
	return "other"
}

// Close closes the TSDB; later snapshots are ignored. Safe to call twice.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}
