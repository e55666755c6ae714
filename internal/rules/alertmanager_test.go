package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	prules "github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/rules"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/store"
	"github.com/spanwatch/spanwatch/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// history is a store holding span metrics of checkout written through the
// aggregator every 15 s of simulated time, with latency(t) per span.
type history struct {
	store *store.Store
	agg   *spanmetrics.Aggregator
	eng   *query.Engine
	now   time.Time
}

func newHistory(t *testing.T, cfg spanmetrics.Config, nc spanmetrics.NamingConfig, start time.Time) *history {
	h := &history{now: start}
	var err error
	h.store, err = store.Open(store.Options{Path: t.TempDir(), Retention: 24 * time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.store.Close() })
	h.agg, err = spanmetrics.New(cfg, spanmetrics.Options{Naming: nc, Now: func() time.Time { return h.now }})
	require.NoError(t, err)
	h.eng, err = query.NewEngine(query.DefaultOptions())
	require.NoError(t, err)
	return h
}

// run writes spans until end: 20 server spans per 15 s, each lasting
// latency(now).
func (h *history) run(t *testing.T, end time.Time, latency func(time.Time) time.Duration) {
	for h.now.Before(end) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "checkout")
		ss := rs.ScopeSpans().AppendEmpty()
		for range 20 {
			sp := ss.Spans().AppendEmpty()
			sp.SetName("POST /charge")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(h.now))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(h.now.Add(latency(h.now))))
		}
		_, err := h.agg.ConsumeTraces(td)
		require.NoError(t, err)
		h.now = h.now.Add(15 * time.Second)
		h.store.ConsumeSnapshot(h.agg.Snapshot(h.now))
	}
}

type received struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (r *received) handler(w http.ResponseWriter, req *http.Request) {
	var m map[string]any
	if err := json.NewDecoder(req.Body).Decode(&m); err == nil {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// find returns the first alert with status and alertname, or nil.
func (r *received) find(status, name string) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		alerts, _ := m["alerts"].([]any)
		for _, a := range alerts {
			al, _ := a.(map[string]any)
			lbls, _ := al["labels"].(map[string]any)
			if al["status"] == status && lbls["alertname"] == name {
				return al
			}
		}
	}
	return nil
}

// TestBuiltinPackNotifiesAlertmanager: checkout's latency doubles for 18
// minutes and recovers; the built-in pack, evaluated every 30 s over that
// history, fires ServiceLatencyP95Regression into a real Alertmanager,
// which notifies a webhook, and the resolved notification follows.
func TestBuiltinPackNotifiesAlertmanager(t *testing.T) {
	var got received
	hook := httptest.NewServer(http.HandlerFunc(got.handler))
	defer hook.Close()
	am := testutil.StartAlertmanager(t, testutil.AlertmanagerToWebhook(hook.URL))
	var direct received // --alert.webhook.url, straight from spanwatch
	directHook := httptest.NewServer(http.HandlerFunc(direct.handler))
	defer directHook.Close()

	// Alertmanager resolves alerts whose end lies in the past, so the
	// story ends now: slow from 20 to 2 minutes ago, recovered since. The
	// pack runs with a 1-minute rate window and `for: 2m` to fit.
	now := time.Now().Truncate(15 * time.Second)
	start := now.Add(-100 * time.Minute)
	slowFrom, slowTo := now.Add(-20*time.Minute), now.Add(-2*time.Minute)
	latency := func(t time.Time) time.Duration {
		if !t.Before(slowFrom) && t.Before(slowTo) {
			return 200 * time.Millisecond
		}
		return 100 * time.Millisecond
	}
	nc := spanmetrics.NamingConfig{Naming: spanmetrics.NamingLegacy, Namespace: "jaeger_spm"}
	h := newHistory(t, spanmetrics.DefaultConfig(), nc, start)
	h.run(t, now, latency)

	cfg := rules.DefaultConfig()
	cfg.Builtin.RateWindow = time.Minute
	cfg.Builtin.P95Regression.For = 2 * time.Minute
	m, err := rules.New(rules.Options{
		Builtin:            cfg.Builtin,
		Names:              spanmetrics.NewNames(spanmetrics.DefaultConfig(), nc),
		EvaluationInterval: 30 * time.Second,
		ExternalURL:        "http://spanwatch.example:8890",
		AlertmanagerURLs:   []string{am},
		WebhookURLs:        []string{directHook.URL},
		QueryFunc:          prules.EngineQueryFunc(h.eng.Engine, h.store.Queryable()),
		Appendable:         h.store.Appendable(),
		Queryable:          h.store.Queryable(),
	})
	require.NoError(t, err)
	m.StartNotifications()
	defer m.Stop()
	// Evaluate through the slow period; wait for Alertmanager to notify the
	// firing alert; then evaluate the recovery.
	ts := slowFrom
	for ; ts.Before(slowTo.Add(30 * time.Second)); ts = ts.Add(30 * time.Second) {
		m.EvalAt(context.Background(), ts)
	}
	require.Eventually(t, func() bool { return got.find("firing", "ServiceLatencyP95Regression") != nil }, 30*time.Second, 100*time.Millisecond)
	for ; !ts.After(now.Add(-30 * time.Second)); ts = ts.Add(30 * time.Second) {
		m.EvalAt(context.Background(), ts)
	}
	firing := got.find("firing", "ServiceLatencyP95Regression")
	lbls := firing["labels"].(map[string]any)
	require.Equal(t, "checkout", lbls["service_name"])
	require.Equal(t, "POST /charge", lbls["operation"])
	ann := firing["annotations"].(map[string]any)
	require.Contains(t, ann["summary"], "checkout", "annotation templates are rendered")
	require.NotContains(t, fmt.Sprint(ann), "{{")
	require.True(t, strings.Contains(fmt.Sprint(ann), "%"), "humanizePercentage renders a percentage: %v", ann)
	require.Eventually(t, func() bool { return got.find("resolved", "ServiceLatencyP95Regression") != nil }, 30*time.Second, 100*time.Millisecond,
		"the resolved notification follows the recovery")

	// The webhook got the same story in Alertmanager's payload format.
	require.Eventually(t, func() bool { return direct.find("resolved", "ServiceLatencyP95Regression") != nil }, 10*time.Second, 50*time.Millisecond)
	df := direct.find("firing", "ServiceLatencyP95Regression")
	require.NotNil(t, df)
	require.Equal(t, "checkout", df["labels"].(map[string]any)["service_name"])
	require.Contains(t, df["annotations"].(map[string]any)["summary"], "checkout")
	direct.mu.Lock()
	require.Equal(t, "4", direct.msgs[0]["version"])
	require.Contains(t, []any{"firing", "resolved"}, direct.msgs[0]["status"])
	require.Equal(t, "http://spanwatch.example:8890", direct.msgs[0]["externalURL"])
	direct.mu.Unlock()
}
