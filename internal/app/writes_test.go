package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/app"
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
	a := startApp(t, nil, func(o *app.Options) {
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
