package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHealthAndReadiness(t *testing.T) {
	ready := NewReadiness("starting")
	mux := http.NewServeMux()
	HealthHandlers(mux, ready)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	for _, p := range []string{"/healthz", "/-/healthy"} {
		code, _ := get(p)
		require.Equal(t, http.StatusOK, code)
	}
	for _, p := range []string{"/readyz", "/-/ready"} {
		code, body := get(p)
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "starting")
	}
	ready.SetReady()
	code, _ := get("/readyz")
	require.Equal(t, http.StatusOK, code)
	ready.Set("storage", errors.New("disk full"))
	code, body := get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "storage: disk full")
	ready.Set("storage", nil)
	ready.SetNotReady("shutting down")
	code, body = get("/-/ready")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "shutting down")
}
