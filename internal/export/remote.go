package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/storage/remote"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// Reasons for spanwatch_remote_write_samples_dropped_total.
const (
	DropQueueFull      = "queue_full"
	DropNonRecoverable = "non_recoverable"
	DropShutdown       = "shutdown"
)

var (
	// errAbandoned stops sending a snapshot that was dropped from the
	// queue while being sent.
	errAbandoned = errors.New("snapshot dropped from the full queue")
	// errStopped stops sending when Shutdown's context ended.
	errStopped = errors.New("remote writer stopped")
)

// RemoteWriter sends span-metric snapshots to one Prometheus remote-write
// 1.0 endpoint (Prometheus with --web.enable-remote-write-receiver, Mimir,
// Thanos Receive, …). ConsumeSnapshot only enqueues; one sender goroutine
// turns each snapshot into requests of at most MaxSamplesPerSend samples and
// sends them in order, retrying recoverable failures with backoff.
//
// Every snapshot is complete (counters are cumulative), so a snapshot
// dropped from a full queue loses resolution, not counts. What a dropped
// snapshot alone would have said is handed on to the next one sent: the
// zero samples of series it saw first and the staleness markers of series
// that went away in it.
type RemoteWriter struct {
	cfg    RemoteWriteConfig
	logger *slog.Logger
	client remote.WriteClient
	m      *rwMetrics
	enc    *rwEncoder // the sender goroutine's

	mu      sync.Mutex
	queue   []*rwEntry // oldest first; queue[0] may be being sent
	carry   rwCarry    // what dropped snapshots hand on to the next one sent
	closed  bool
	started bool
	wake    chan struct{}

	stop   chan struct{}   // closed by Shutdown: send what is queued, then exit
	ctx    context.Context // cancelled when Shutdown's context ends
	cancel context.CancelFunc
	done   chan struct{} // closed when the sender exits

	startOnce sync.Once
	shutOnce  sync.Once
	shutErr   error

	lastDropLog time.Time // the sender's, to rate-limit drop warnings
}

// rwEntry is one queued snapshot.
type rwEntry struct {
	snap      *spanmetrics.Snapshot
	sending   bool          // guarded by RemoteWriter.mu
	abandoned chan struct{} // closed when dropped while being sent
}

// rwCarry is what dropped snapshots hand on to the next snapshot sent.
type rwCarry struct {
	newKeys map[string]struct{}      // series whose zero-first samples were not sent
	gone    []spanmetrics.GoneSeries // series whose staleness markers were not sent
}

// NewRemoteWriter validates cfg, fills in its defaults and returns a writer
// that queues snapshots until Start. A nil logger discards; reg, if not nil,
// receives the spanwatch_remote_write_* metrics labelled with the
// endpoint's name, which must be unique per registry.
func NewRemoteWriter(cfg RemoteWriteConfig, logger *slog.Logger, reg prometheus.Registerer) (*RemoteWriter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("remote write %q: %w", cfg.Name, err)
	}
	hc := config_util.HTTPClientConfig{FollowRedirects: true}
	if cfg.BasicAuth != nil {
		hc.BasicAuth = &config_util.BasicAuth{Username: cfg.BasicAuth.Username, Password: config_util.Secret(cfg.BasicAuth.Password)}
	}
	if cfg.BearerToken != "" {
		hc.Authorization = &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(cfg.BearerToken)}
	}
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("remote write %q: %w", cfg.Name, err)
	}
	client, err := remote.NewWriteClient(cfg.Name, &remote.ClientConfig{
		URL:              &config_util.URL{URL: u},
		Timeout:          model.Duration(cfg.Timeout),
		HTTPClientConfig: hc,
		Headers:          maps.Clone(cfg.Headers),
		// With RetryOnRateLimit a 429 is a RecoverableError like a 5xx, and
		// sendBatch retries it with the configured backoff. Store parses a
		// Retry-After header into that error too, but into an unexported
		// field that only Prometheus's own QueueManager reads, so the
		// header is not honoured here: the backoff applies.
		RetryOnRateLimit: true,
	})
	if err != nil {
		return nil, fmt.Errorf("remote write %q: %w", cfg.Name, err)
	}
	m, err := newRWMetrics(reg, cfg.Name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &RemoteWriter{
		cfg:    cfg,
		logger: logger.With("remote_name", cfg.Name),
		client: client,
		m:      m,
		enc:    newRWEncoder(cfg.ExternalLabels, cfg.MaxSamplesPerSend, cfg.sendNativeHistograms()),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}, nil
}

// Name is the endpoint's name (the remote_name label).
func (w *RemoteWriter) Name() string { return w.cfg.Name }

// ConsumeSnapshot enqueues s and returns at once. When the queue is full
// the oldest snapshot is dropped; if it is being sent, the sender abandons
// it after the request in flight.
func (w *RemoteWriter) ConsumeSnapshot(s *spanmetrics.Snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.m.dropped[DropShutdown].Add(float64(w.samplesFor(s)))
		return
	}
	if len(w.queue) >= w.cfg.QueueSnapshots {
		old := w.queue[0]
		w.queue = w.queue[1:]
		if old.sending {
			// The sender counts what it did not send and hands it on.
			close(old.abandoned)
		} else {
			w.m.dropped[DropQueueFull].Add(float64(w.samplesFor(old.snap)))
			w.carry.add(old.snap, 0, 0)
			w.logger.Warn("remote write queue full; dropped the oldest snapshot",
				"snapshot_time", old.snap.Time, "queue_snapshots", w.cfg.QueueSnapshots)
		}
	}
	w.queue = append(w.queue, &rwEntry{snap: s, abandoned: make(chan struct{})})
	w.m.queueLength.Set(float64(len(w.queue)))
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Start starts the sender goroutine. Calls after the first, or after
// Shutdown, do nothing.
func (w *RemoteWriter) Start() {
	w.startOnce.Do(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.closed {
			return
		}
		w.started = true
		go w.run()
	})
}

// Shutdown stops accepting snapshots and sends what is queued, retrying as
// usual, until the queue is empty or ctx ends; what is then unsent is
// counted as dropped (reason shutdown) and ctx's error returned. Without
// Start, the queued snapshots are dropped. Safe to call more than once.
func (w *RemoteWriter) Shutdown(ctx context.Context) error {
	w.shutOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		started := w.started
		w.mu.Unlock()
		close(w.stop)
		defer w.cancel()
		if !started {
			w.dropQueued()
			return
		}
		select {
		case <-w.done:
		case <-ctx.Done():
			w.cancel()
			<-w.done
			w.shutErr = fmt.Errorf("remote write %q: queue not sent before shutdown ended: %w", w.cfg.Name, context.Cause(ctx))
		}
	})
	return w.shutErr
}

// run is the sender goroutine.
func (w *RemoteWriter) run() {
	defer close(w.done)
	for {
		e, c := w.next()
		if e == nil {
			return
		}
		v := c.apply(e.snap)
		err := w.enc.encode(v, func(data []byte, n int) error { return w.sendBatch(e, data, n) })
		w.finish(e, v, err)
	}
}

// next waits for a snapshot to send and takes the carry along; nil means
// exit.
func (w *RemoteWriter) next() (*rwEntry, rwCarry) {
	for {
		if w.ctx.Err() != nil {
			w.dropQueued()
			return nil, rwCarry{}
		}
		w.mu.Lock()
		if len(w.queue) > 0 {
			e := w.queue[0]
			e.sending = true
			c := w.carry
			w.carry = rwCarry{}
			w.mu.Unlock()
			return e, c
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return nil, rwCarry{}
		}
		select {
		case <-w.wake:
		case <-w.stop:
		case <-w.ctx.Done():
		}
	}
}

// finish removes e from the queue and accounts for what encode did not
// send.
func (w *RemoteWriter) finish(e *rwEntry, v *spanmetrics.Snapshot, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.sending = false
	if len(w.queue) > 0 && w.queue[0] == e {
		w.queue = w.queue[1:]
	}
	w.m.queueLength.Set(float64(len(w.queue)))
	if err == nil {
		return
	}
	unsent := float64(max(w.samplesFor(v)-w.enc.finalized, 0))
	switch {
	case errors.Is(err, errAbandoned):
		w.m.dropped[DropQueueFull].Add(unsent)
		w.carry.add(v, w.enc.seriesDone, w.enc.goneDone)
		w.logger.Warn("remote write queue full; abandoned the snapshot being sent",
			"snapshot_time", v.Time, "unsent_samples", unsent, "queue_snapshots", w.cfg.QueueSnapshots)
	case errors.Is(err, errStopped):
		w.m.dropped[DropShutdown].Add(unsent)
	default:
		w.m.dropped[DropNonRecoverable].Add(unsent)
		w.logger.Error("remote write: cannot encode snapshot", "err", err)
	}
}

// dropQueued empties the queue at shutdown, counting its samples.
func (w *RemoteWriter) dropQueued() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.queue {
		w.m.dropped[DropShutdown].Add(float64(w.samplesFor(e.snap)))
	}
	w.queue = nil
	w.m.queueLength.Set(0)
}

// samplesFor is the number of samples the writer sends for s: the package
// function countSamples, without native histograms if the endpoint does not
// take them.
func (w *RemoteWriter) samplesFor(s *spanmetrics.Snapshot) int {
	return countSamples(s, w.cfg.sendNativeHistograms())
}

// sendBatch sends one request, retrying recoverable errors with backoff
// until it succeeds, the snapshot is abandoned or the writer stops. A
// non-recoverable error drops the request and returns nil.
func (w *RemoteWriter) sendBatch(e *rwEntry, data []byte, n int) error {
	backoff := w.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		select {
		case <-e.abandoned:
			return errAbandoned
		default:
		}
		if w.ctx.Err() != nil {
			return errStopped
		}
		_, err := w.client.Store(w.ctx, data, attempt)
		if err == nil {
			w.m.sent.Add(float64(n))
			w.m.lastSend.SetToCurrentTime()
			if attempt > 0 {
				w.logger.Info("remote write recovered", "attempts", attempt+1)
			}
			return nil
		}
		w.m.failed.Inc()
		if w.ctx.Err() != nil {
			return errStopped
		}
		var rerr remote.RecoverableError
		if !errors.As(err, &rerr) {
			w.m.dropped[DropNonRecoverable].Add(float64(n))
			if time.Since(w.lastDropLog) > 10*time.Second {
				w.lastDropLog = time.Now()
				w.logger.Warn("remote write rejected a request; dropped its samples", "samples", n, "err", err)
			}
			return nil
		}
		w.m.retried.Add(float64(n))
		wait := jitter(backoff)
		if attempt == 0 {
			w.logger.Warn("remote write failed; retrying", "err", err, "backoff", wait)
		} else {
			w.logger.Debug("remote write failed; retrying", "err", err, "attempt", attempt+1, "backoff", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-e.abandoned:
			t.Stop()
			return errAbandoned
		case <-w.ctx.Done():
			t.Stop()
			return errStopped
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// jitter returns a duration between d/2 and d.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// add records what v did not send: the zero-first samples of its new
// series from index fromSeries on, and the staleness markers of its gone
// series from index fromGone on. A series first seen and gone before
// anything was sent needs neither.
func (c *rwCarry) add(v *spanmetrics.Snapshot, fromSeries, fromGone int) {
	for i := fromSeries; i < len(v.Series); i++ {
		if v.Series[i].New {
			if c.newKeys == nil {
				c.newKeys = map[string]struct{}{}
			}
			c.newKeys[v.Series[i].Key] = struct{}{}
		}
	}
	for _, g := range v.Gone[min(fromGone, len(v.Gone)):] {
		if _, ok := c.newKeys[g.Key]; ok {
			delete(c.newKeys, g.Key)
			continue
		}
		c.gone = append(c.gone, g)
	}
}

// apply returns s with the carry merged in: carried new series that s still
// holds are new again, and carried gone series that s does not hold again
// are gone. s itself is not modified (sinks share it).
func (c rwCarry) apply(s *spanmetrics.Snapshot) *spanmetrics.Snapshot {
	if len(c.newKeys) == 0 && len(c.gone) == 0 {
		return s
	}
	v := *s
	if len(c.newKeys) > 0 {
		v.Series = slices.Clone(s.Series)
		for i := range v.Series {
			if _, ok := c.newKeys[v.Series[i].Key]; ok {
				v.Series[i].New = true
			}
		}
	}
	if len(c.gone) > 0 || len(c.newKeys) > 0 && len(s.Gone) > 0 {
		// Skip markers for series s holds again, for series never sent
		// (first seen by a dropped snapshot), and duplicates.
		skip := make(map[string]struct{}, len(v.Series)+len(c.newKeys)+len(c.gone))
		for i := range v.Series {
			skip[v.Series[i].Key] = struct{}{}
		}
		for k := range c.newKeys {
			skip[k] = struct{}{}
		}
		gone := make([]spanmetrics.GoneSeries, 0, len(c.gone)+len(s.Gone))
		for _, g := range slices.Concat(c.gone, s.Gone) {
			if _, ok := skip[g.Key]; !ok {
				skip[g.Key] = struct{}{}
				gone = append(gone, g)
			}
		}
		v.Gone = gone
	}
	return &v
}

// rwMetrics are the spanwatch_remote_write_* self-metrics of one endpoint.
type rwMetrics struct {
	sent, retried, failed prometheus.Counter
	dropped               map[string]prometheus.Counter
	queueLength, lastSend prometheus.Gauge
}

func newRWMetrics(reg prometheus.Registerer, name string) (*rwMetrics, error) {
	const ns, sub = "spanwatch", "remote_write"
	m := &rwMetrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "samples_sent_total",
			Help: "Samples (floats and native histograms) the remote endpoint accepted.",
		}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "samples_retried_total",
			Help: "Samples in requests that failed recoverably and were retried, counted per retry.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_failed_total",
			Help: "Remote-write requests that failed, recoverably or not.",
		}),
		queueLength: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "queue_length",
			Help: "Snapshots waiting to be sent, the one being sent included.",
		}),
		lastSend: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "last_send_timestamp_seconds",
			Help: "When a request last succeeded, in seconds since the epoch.",
		}),
		dropped: map[string]prometheus.Counter{},
	}
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "samples_dropped_total",
		Help: "Samples not sent: snapshot dropped from the full queue, request rejected by the endpoint, or unsent at shutdown.",
	}, []string{"reason"})
	for _, r := range []string{DropQueueFull, DropNonRecoverable, DropShutdown} {
		m.dropped[r] = dropped.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"remote_name": name}, reg)
	cs := []prometheus.Collector{m.sent, m.retried, m.failed, dropped, m.queueLength, m.lastSend}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, r := range cs[:i] {
				reg.Unregister(r)
			}
			return nil, fmt.Errorf("remote write %q: registering metrics (is the name used twice?): %w", name, err)
		}
	}
	return m, nil
}
