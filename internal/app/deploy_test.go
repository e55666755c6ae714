package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/testutil"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// deployment is an event as GET /api/v1/deployments shows it.
type deployment struct {
	ID               string          `json:"id"`
	Service          string          `json:"service"`
	Namespace        string          `json:"namespace"`
	Version          string          `json:"version"`
	PreviousVersion  string          `json:"previous_version"`
	PreviousVersions []string        `json:"previous_versions"`
	Shape            string          `json:"shape"`
	FirstSeen        time.Time       `json:"first_seen"`
	State            string          `json:"state"`
	Verdict          string          `json:"verdict"`
	Mode             string          `json:"mode"`
	Reason           string          `json:"reason"`
	Report           json.RawMessage `json:"report"`
	Rebuilt          bool            `json:"rebuilt"`
}

type deploymentList struct {
	Status                 string       `json:"status"`
	Data                   []deployment `json:"data"`
	ServicesWithoutVersion []string     `json:"services_without_version"`
	ErrorType              string       `json:"errorType"`
	Error                  string       `json:"error"`
}

func listDeployments(t *testing.T, a *app.App, params url.Values) (int, deploymentList) {
	t.Helper()
	resp, err := http.Get("http://" + a.WebAddr().String() + "/api/v1/deployments?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var l deploymentList
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&l))
	return resp.StatusCode, l
}

// rollout is a deploy scenario: per step, how many spans each version
// serves and how slow.
type rollout struct {
	sim     *spantest.Simulation
	service string
	step    int
}

// spans of one version: n spans lasting 20…99 ms times factor.
func versionSpans(service, version string, n int, factor float64) []spantest.Stub {
	out := make([]spantest.Stub, 0, n)
	for i := range n {
		out = append(out, spantest.Stub{
			Service: service, Name: "GET /item", Kind: trace.SpanKindServer,
			Dur: time.Duration(float64(20+(i*37)%80) * factor * float64(time.Millisecond)),
			Res: []attribute.KeyValue{attribute.String("service.version", version), attribute.String("service.namespace", "shop")},
		})
	}
	return out
}

// advance sends one flush interval of spans, flushes and polls.
func (r *rollout) advance(t *testing.T, stubs ...[]spantest.Stub) {
	t.Helper()
	var all []spantest.Stub
	for _, s := range stubs {
		all = append(all, s...)
	}
	r.sim.Step(15*time.Second, all)
	require.NoError(t, r.sim.App.PollDeployments(context.Background()))
	r.step++
}

// until advances with stubs(step) until the service's latest deployment
// is decided, at most max steps, and returns it.
func (r *rollout) until(t *testing.T, max int, stubs func(i int) [][]spantest.Stub) deployment {
	t.Helper()
	for i := range max {
		r.advance(t, stubs(i)...)
		_, l := listDeployments(t, r.sim.App, url.Values{"service": {r.service}})
		if len(l.Data) > 0 && l.Data[0].State == "decided" {
			return l.Data[0]
		}
	}
	_, l := listDeployments(t, r.sim.App, url.Values{"service": {r.service}})
	require.FailNow(t, "no verdict", "%+v", l.Data)
	return deployment{}
}

func deployConfig() *config.File {
	cfg := config.Default()
	cfg.Deploy.PollInterval = 15 * time.Second
	return cfg
}

func manualPolls(o *app.Options) { o.DeployManualPolls = true }

func newRollout(t *testing.T, cfg *config.File, service string, mutate ...func(*app.Options)) *rollout {
	sim := spantest.NewSimulation(t, cfg, time.Now().Truncate(time.Second), append([]func(*app.Options){manualPolls}, mutate...)...)
	return &rollout{sim: sim, service: service}
}

// TestDeployCanaryPass: a canary serving 30 % beside the stable version,
// as fast, passes in the same window; the old version keeps serving.
func TestDeployCanaryPass(t *testing.T) {
	r := newRollout(t, deployConfig(), "catalog")
	for range 24 {
		r.advance(t, versionSpans("catalog", "v1", 200, 1))
	}
	_, l := listDeployments(t, r.sim.App, nil)
	require.Empty(t, l.Data, "one version is no deployment")
	d := r.until(t, 60, func(int) [][]spantest.Stub {
		return [][]spantest.Stub{versionSpans("catalog", "v1", 140, 1), versionSpans("catalog", "v2", 60, 1)}
	})
	require.Equal(t, "pass", d.Verdict, d.Reason)
	require.Equal(t, "canary", d.Shape)
	require.Equal(t, "same-window", d.Mode)
	require.Equal(t, "v1", d.PreviousVersion)
	require.Equal(t, "shop", d.Namespace)
	require.NotEmpty(t, d.Report)
	var rep map[string]any
	require.NoError(t, json.Unmarshal(d.Report, &rep))
	require.Equal(t, "pass", rep["verdict"])
}

// TestDeployRollingRegression: v2, twice as slow, replaces v1 over two
// minutes; the verdict is a regression, the shape rolling, and the alert
// reaches a real Alertmanager and a webhook with its labels and link.
func TestDeployRollingRegression(t *testing.T) {
	viaAM := testutil.StartWebhookRecorder(t)
	am := testutil.StartAlertmanager(t, testutil.AlertmanagerToWebhook(viaAM.URL))
	direct := testutil.StartWebhookRecorder(t)
	r := newRollout(t, deployConfig(), "checkout", func(o *app.Options) {
		o.AlertmanagerURLs = []string{am}
		o.WebhookURLs = []string{direct.URL}
		o.ExternalURL = "http://spanwatch.example:8890"
	})
	for range 24 {
		r.advance(t, versionSpans("checkout", "v1", 80, 1))
	}
	const rollSteps = 8
	d := r.until(t, 80, func(i int) [][]spantest.Stub {
		old := max(0, 80*(rollSteps-1-i)/rollSteps)
		return [][]spantest.Stub{versionSpans("checkout", "v1", old, 1), versionSpans("checkout", "v2", 80-old, 2)}
	})
	require.Equal(t, "regression", d.Verdict, d.Reason)
	require.NotEmpty(t, d.Reason)
	// The shape unfolds after the verdict too: follow until the end.
	for range 12 {
		r.advance(t, versionSpans("checkout", "v2", 80, 2))
	}
	_, l := listDeployments(t, r.sim.App, url.Values{"service": {"checkout"}})
	require.Len(t, l.Data, 1)
	require.Equal(t, "rolling", l.Data[0].Shape)

	for _, rec := range []*testutil.WebhookRecorder{direct, viaAM} {
		require.Eventually(t, func() bool { a, _ := rec.Find("firing", "DeployRegression"); return a != nil },
			30*time.Second, 100*time.Millisecond)
		a, _ := rec.Find("firing", "DeployRegression")
		require.Equal(t, "checkout", a.Labels["service"])
		require.Equal(t, "shop", a.Labels["namespace"])
		require.Equal(t, "v2", a.Labels["version"])
		require.Equal(t, "v1", a.Labels["previous_version"])
		require.NotEmpty(t, a.Labels["severity"])
		require.Equal(t, d.Reason, a.Annotations["description"])
		require.Equal(t, "http://spanwatch.example:8890/deployments/"+d.ID, a.Annotations["link"])
		require.NotEmpty(t, a.Annotations["summary"])
	}

	// The verdict metric.
	v := metricValue(t, r.sim.App, "spanwatch_deploy_verdict", map[string]string{"service": "checkout", "version": "v2", "verdict": "regression"})
	require.Equal(t, 1.0, v)
	// The info series in the TSDB.
	resp, err := http.Get("http://" + r.sim.App.WebAddr().String() + "/api/v1/query?" + url.Values{
		"query": {`spanwatch_deployment_info{service="checkout",version="v2",previous_version="v1",namespace="shop"}`},
		"time":  {fmt.Sprint(r.sim.Clock.Now().Unix())},
	}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var qr struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&qr))
	require.NotEmpty(t, qr.Data.Result)
}

// TestDeploySwitch: v1 stops and v2 starts within one flush, as fast: a
// switch, decided before/after (time-shifted) as a pass.
func TestDeploySwitch(t *testing.T) {
	r := newRollout(t, deployConfig(), "search")
	for range 24 {
		r.advance(t, versionSpans("search", "v1", 100, 1))
	}
	d := r.until(t, 60, func(int) [][]spantest.Stub { return [][]spantest.Stub{versionSpans("search", "v2", 100, 1)} })
	require.Equal(t, "switch", d.Shape)
	require.Equal(t, "before-after", d.Mode)
	require.Equal(t, "pass", d.Verdict, d.Reason)
	require.Contains(t, d.Reason, "time-shifted")
	require.Contains(t, string(d.Report), "time-shifted")
}

// TestDeployRestart: a deploy while detection was off (as if spanwatch was
// down) is found from stored data at the next start; its verdict survives
// a further restart, and is not found twice.
func TestDeployRestart(t *testing.T) {
	dir := t.TempDir()
	storage := func(o *app.Options) { o.Storage.Path = dir }
	off := deployConfig()
	off.Deploy.Enabled = false
	start := time.Now().Truncate(time.Second)
	sim := spantest.NewSimulation(t, off, start, manualPolls, storage)
	for range 24 {
		sim.Step(15*time.Second, versionSpans("cart", "v1", 100, 1))
	}
	for range 8 {
		sim.Step(15*time.Second, versionSpans("cart", "v2", 100, 1))
	}
	code, l := listDeployments(t, sim.App, nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "unavailable", l.ErrorType)
	require.NoError(t, sim.App.Shutdown(context.Background()))

	r := &rollout{sim: spantest.NewSimulation(t, deployConfig(), sim.Clock.Now(), manualPolls, storage), service: "cart"}
	d := r.until(t, 60, func(int) [][]spantest.Stub { return [][]spantest.Stub{versionSpans("cart", "v2", 100, 1)} })
	require.True(t, d.Rebuilt)
	require.Equal(t, "v2", d.Version)
	require.Equal(t, "v1", d.PreviousVersion)
	// A new series is first stored at 0 one flush before the flush that
	// holds its first spans: first seen is the start of that interval.
	require.True(t, start.Add(24*15*time.Second).Equal(d.FirstSeen), "first seen %s", d.FirstSeen)
	require.NotEqual(t, "pending", d.Verdict)
	require.NoError(t, r.sim.App.Shutdown(context.Background()))

	again := spantest.NewSimulation(t, deployConfig(), r.sim.Clock.Now(), manualPolls, storage)
	again.Step(15*time.Second, versionSpans("cart", "v2", 100, 1))
	require.NoError(t, again.App.PollDeployments(context.Background()))
	_, l = listDeployments(t, again.App, nil)
	require.Len(t, l.Data, 1)
	require.Equal(t, d.ID, l.Data[0].ID)
	require.Equal(t, d.Verdict, l.Data[0].Verdict)
	require.Equal(t, d.Reason, l.Data[0].Reason)

	resp, err := http.Get("http://" + again.App.WebAddr().String() + "/api/v1/deployments/" + d.ID)
	require.NoError(t, err)
	defer resp.Body.Close()
	var one struct {
		Status string     `json:"status"`
		Data   deployment `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&one))
	require.Equal(t, "success", one.Status)
	require.Equal(t, d.ID, one.Data.ID)
}

// TestDeployEdgeCases: a service without service.version gets no events
// and is listed; spans whose end times are ten minutes off make no
// events; bad parameters are bad_data.
func TestDeployEdgeCases(t *testing.T) {
	r := newRollout(t, deployConfig(), "legacy")
	noVersion := []spantest.Stub{{Service: "legacy", Name: "GET /", Kind: trace.SpanKindServer, Dur: 10 * time.Millisecond}}
	for range 10 {
		r.advance(t, noVersion, versionSpans("skewed", "v1", 10, 1))
	}
	// Skewed spans: the SDK stamps them ten minutes off; the version is
	// the same, so nothing happens.
	skew := versionSpans("skewed", "v1", 10, 1)
	for range 10 {
		require.NoError(t, r.sim.Exp.ExportSpans(context.Background(), skewedSpans(skew, 10*time.Minute)))
		require.NoError(t, r.sim.Exp.ExportSpans(context.Background(), skewedSpans(skew, -10*time.Minute)))
		r.advance(t, noVersion)
	}
	code, l := listDeployments(t, r.sim.App, nil)
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, l.Data)
	require.Equal(t, []string{"legacy"}, l.ServicesWithoutVersion)

	for _, bad := range []url.Values{{"since": {"yesterday"}}, {"limit": {"-1"}}, {"limit": {"many"}}} {
		code, l := listDeployments(t, r.sim.App, bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
		require.Equal(t, "bad_data", l.ErrorType)
		require.NotEmpty(t, l.Error)
	}
	resp, err := http.Get("http://" + r.sim.App.WebAddr().String() + "/api/v1/deployments/nope")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// skewedSpans are stubs as spans whose start and end are off by skew.
func skewedSpans(stubs []spantest.Stub, skew time.Duration) []sdktrace.ReadOnlySpan {
	var out tracetest.SpanStubs
	for _, s := range spantest.Spans(stubs...) {
		st := tracetest.SpanStubFromReadOnlySpan(s)
		st.StartTime, st.EndTime = st.StartTime.Add(skew), st.EndTime.Add(skew)
		out = append(out, st)
	}
	return out.Snapshots()
}

// metricValue reads one of spanwatch's own metrics from /metrics.
func metricValue(t *testing.T, a *app.App, name string, lbls map[string]string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range lbls {
				if got[k] != v {
					continue next
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	require.FailNow(t, "metric not found", "%s %v", name, lbls)
	return 0
}

// TestDeployQueryMode: a spanwatch with --storage.mode=none --query.url
// finds the same deployment, with the same id, through the remote store,
// and decides it too.
func TestDeployQueryMode(t *testing.T) {
	r := newRollout(t, deployConfig(), "search")
	reader := spantest.StartApp(t, deployConfig(), func(o *app.Options) {
		o.StorageMode = app.StorageNone
		o.QueryURL = "http://" + r.sim.App.WebAddr().String()
		o.DeployManualPolls = true
		o.Now = r.sim.Clock.Now
	})
	both := func() {
		require.NoError(t, reader.PollDeployments(context.Background()))
	}
	for range 24 {
		r.advance(t, versionSpans("search", "v1", 100, 1))
		both()
	}
	d := r.until(t, 60, func(int) [][]spantest.Stub {
		both()
		return [][]spantest.Stub{versionSpans("search", "v2", 100, 1)}
	})
	for range 3 {
		both()
	}
	_, l := listDeployments(t, reader, nil)
	require.Len(t, l.Data, 1)
	require.Equal(t, d.ID, l.Data[0].ID, "one event for both")
	require.Equal(t, d.FirstSeen, l.Data[0].FirstSeen)
	require.Equal(t, "switch", l.Data[0].Shape)
	require.Equal(t, "decided", l.Data[0].State)
	require.Equal(t, d.Verdict, l.Data[0].Verdict)
}
