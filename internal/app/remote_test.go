package app_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/testutil"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// TestQueryURLHeadersAndAuth: a stateless spanwatch reading from a store
// that needs a tenant header and basic authentication (Mimir behind a
// gateway) sends both on its query API and its rule evaluation, and a
// client of its API cannot choose another tenant.
func TestQueryURLHeadersAndAuth(t *testing.T) {
	backend := spantest.NewSimulation(t, nil, time.Now().Add(-time.Minute))
	backend.Step(15*time.Second, []spantest.Stub{{Service: "cart", Name: "GET /cart", Dur: 10 * time.Millisecond}})
	backend.Step(15*time.Second, nil)
	proxy := testutil.StartTenantProxy(t, "http://"+backend.App.WebAddr().String(), "team-a", "sw", "pw")

	file := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(file, []byte(`groups:
  - name: remote
    interval: 200ms
    rules:
      - alert: AnySpans
        expr: sum(traces_span_metrics_calls_total) > 0
`), 0o644))
	front := startApp(t, nil, func(o *app.Options) {
		o.StorageMode = app.StorageNone
		o.QueryURL = strings.Replace(proxy.URL, "http://", "http://sw:pw@", 1)
		o.QueryHeaders = map[string]string{"x-scope-orgid": "team-a"}
		o.RuleFiles = []string{file}
		o.RulesBuiltin = false
	})
	base := "http://" + front.WebAddr().String()

	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape("sum(traces_span_metrics_calls_total)"), nil)
	require.NoError(t, err)
	req.Header.Set("X-Scope-OrgID", "team-b")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), `"value":[`)
	require.Contains(t, string(body), `,"1"]`)

	var alerts struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	require.Eventually(t, func() bool {
		getJSON(t, base+"/api/v1/alerts", &alerts)
		return len(alerts.Data.Alerts) == 1 && alerts.Data.Alerts[0].State == "firing"
	}, 20*time.Second, 100*time.Millisecond, "the rule evaluates through the tenant proxy")
	require.Zero(t, proxy.Denied())
}
