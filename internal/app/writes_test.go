package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
)

// TestLifecycleIsOffByDefault: without --web.enable-lifecycle, POST
// /-/reload is refused with a message saying how to enable it.
func TestLifecycleIsOffByDefault(t *testing.T) {
	a := startApp(t, nil)
	resp, err := http.Post("http://"+a.WebAddr().String()+"/-/reload", "", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, string(body), "--web.enable-lifecycle")
}

// TestQueryURLForwardsOnlyTheQueryAPI: with --query.url, the store's write
// and admin endpoints are not reachable through spanwatch (which would
// call them with its own --query.header credentials), and the store's CORS
// headers do not leak through.
func TestQueryURLForwardsOnlyTheQueryAPI(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
	)
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`)
	}))
	t.Cleanup(store.Close)
	// Only the requests made through the proxy: no deployment polling.
	cfg := config.Default()
	cfg.Deploy.Enabled = false
	a := startApp(t, cfg, func(o *app.Options) {
		o.StorageMode = app.StorageNone
		o.QueryURL = store.URL
		o.RulesBuiltin = false
	})
	base := "http://" + a.WebAddr().String()
	origin := map[string]string{"Origin": "https://evil.example.net"}
	for _, p := range []string{"/api/v1/query?query=1", "/api/v1/label/service_name/values", "/api/v1/status/buildinfo"} {
		r := do(t, http.DefaultClient, http.MethodGet, base+p, origin)
		require.Equal(t, http.StatusOK, r.code, p)
		require.Empty(t, r.header.Get("Access-Control-Allow-Origin"), p)
	}
	for _, p := range []string{"/api/v1/admin/tsdb/delete_series?match[]=up", "/api/v1/admin/tsdb/snapshot", "/api/v1/write", "/api/v1/push", "/api/v1/otlp/v1/metrics"} {
		r := do(t, http.DefaultClient, http.MethodPost, base+p, nil)
		require.Equal(t, http.StatusNotFound, r.code, p)
		require.Contains(t, r.body, `"errorType":"not_found"`, p)
		require.Contains(t, r.body, "forwards only the query API", p)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"/api/v1/query", "/api/v1/label/service_name/values", "/api/v1/status/buildinfo"}, paths)
}

// TestCompareEscapesNames: the service and operation names of a compare
// request reach PromQL only as label values: every query the comparison
// sends selects exactly that service and those operations, whatever quotes,
// braces and regular-expression characters they hold.
func TestCompareEscapesNames(t *testing.T) {
	var (
		mu      sync.Mutex
		queries []string
	)
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		queries = append(queries, r.Form.Get("query"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(store.Close)
	// Only the comparison's queries: no deployment detection polling.
	cfg := config.Default()
	cfg.Deploy.Enabled = false
	a := startApp(t, cfg, func(o *app.Options) {
		o.StorageMode = app.StorageNone
		o.QueryURL = store.URL
		o.RulesBuiltin = false
	})
	service := `checkout"} or vector(1) or {service_name=~".+`
	op := `GET /a.*|.+"}`
	body, err := json.Marshal(map[string]any{
		"service": service, "operations": []string{op}, "naming": "otel",
		"baseline": map[string]string{"matchers": `service_version="v1"`}, "candidate": map[string]string{"matchers": `service_version="v2"`},
	})
	require.NoError(t, err)
	resp, err := http.Post("http://"+a.WebAddr().String()+"/api/v1/compare", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NotEmpty(t, out)

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, queries, "the comparison queried the store (answer: %s)", out)
	p := parser.NewParser(parser.Options{})
	sawOperation := false
	for _, q := range queries {
		expr, err := p.ParseExpr(q)
		require.NoError(t, err, q)
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if c, ok := n.(*parser.Call); ok {
				require.NotEqual(t, "vector", c.Func.Name, "%s evaluates the injected text", q)
			}
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			var svc []string
			for _, m := range vs.LabelMatchers {
				switch m.Name {
				case "service_name":
					svc = append(svc, m.Type.String()+m.Value)
				case "span_name":
					sawOperation = true
					require.True(t, m.Matches(op), "%s selects the operation", q)
					require.False(t, m.Matches("GET /abc"), "%s: the operation's regular-expression characters are literal", q)
				}
			}
			require.Equal(t, []string{"=" + service}, svc, "%s selects the service and only it", q)
			return nil
		})
	}
	require.True(t, sawOperation, "some query selects the operations: %q", queries)
}

// TestQueryURLDownAnswersWithAMessage: a store that cannot be reached is a
// 502 in the API's error envelope, with a message and without the URL's
// password.
func TestQueryURLDownAnswersWithAMessage(t *testing.T) {
	store := httptest.NewServer(http.NotFoundHandler())
	down := store.URL
	store.Close()
	a := startApp(t, nil, func(o *app.Options) {
		o.StorageMode = app.StorageNone
		o.QueryURL = strings.Replace(down, "http://", "http://sw:hunter2@", 1)
		o.RulesBuiltin = false
	})
	resp, err := http.Get("http://" + a.WebAddr().String() + "/api/v1/query?query=1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Contains(t, string(body), `"errorType":"unavailable"`)
	require.Contains(t, string(body), "query backend")
	require.NotContains(t, string(body), "hunter2")
}
