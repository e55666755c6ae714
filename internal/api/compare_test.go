package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/query"
)

func newCompare(h http.Handler) http.Handler {
	return CompareHandler(&gate.Comparer{API: query.HandlerAPI(h), Defaults: gate.DefaultConfig()}, nil)
}

func postCompare(t *testing.T, h http.Handler, method, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, ComparePath, strings.NewReader(body)))
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	return rec.Code, out
}

func TestCompareBackendFailureIs503(t *testing.T) {
	failing := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"internal","error":"disk on fire"}`))
	})
	h := newCompare(failing)
	code, out := postCompare(t, h, http.MethodPost, `{"service":"checkout","naming":"otel","baseline":{"matchers":"service_version=\"v1\""},"candidate":{"matchers":"service_version=\"v2\""}}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "error", out["status"])
	require.Equal(t, "unavailable", out["errorType"])
	require.Contains(t, out["error"], "query backend failed")
}

func TestCompareBadRequests(t *testing.T) {
	h := newCompare(http.NotFoundHandler())
	for name, tc := range map[string]struct {
		method, body string
		code         int
		msg          string
	}{
		"get":         {http.MethodGet, "", http.StatusMethodNotAllowed, "use POST"},
		"bad json":    {http.MethodPost, "{", http.StatusBadRequest, "request body"},
		"unknown":     {http.MethodPost, `{"service":"a","x":1}`, http.StatusBadRequest, `unknown field "x"`},
		"naming":      {http.MethodPost, `{"service":"a","naming":"weird"}`, http.StatusBadRequest, "naming"},
		"unit":        {http.MethodPost, `{"service":"a","unit":"h"}`, http.StatusBadRequest, "unit: must be ms or s"},
		"offset":      {http.MethodPost, `{"service":"a","baseline":{"offset":"soon"}}`, http.StatusBadRequest, "baseline.offset"},
		"both":        {http.MethodPost, `{"service":"a","baseline":{"offset":"1h","start":"-2h","end":"-1h"}}`, http.StatusBadRequest, "choose offset"},
		"end <start":  {http.MethodPost, `{"service":"a","baseline":{"start":"-1h","end":"-2h"},"candidate":{"start":"-1h","end":"now"}}`, http.StatusBadRequest, "end must be after"},
		"bad time":    {http.MethodPost, `{"service":"a","baseline":{"start":"yesterday","end":"now"}}`, http.StatusBadRequest, "baseline.start"},
		"threshold":   {http.MethodPost, `{"service":"a","thresholds":{"fdr":1}}`, http.StatusBadRequest, "fdr"},
		"thresh type": {http.MethodPost, `{"service":"a","thresholds":{"min_ratio":"big"}}`, http.StatusBadRequest, "thresholds"},
		"url":         {http.MethodPost, `{"service":"a","thresholds":{"url":"http://elsewhere"}}`, http.StatusBadRequest, "not thresholds"},
		"headers":     {http.MethodPost, `{"service":"a","thresholds":{"headers":{"A":"b"}}}`, http.StatusBadRequest, "not thresholds"},
		"cand offset": {http.MethodPost, `{"service":"a","candidate":{"offset":"1h"}}`, http.StatusBadRequest, "candidate.offset"},
		"namespace":   {http.MethodPost, `{"service":"a","namespace":"x{a=\"b\"} or vector(1)"}`, http.StatusBadRequest, "namespace"},
		"too large":   {http.MethodPost, `{"service":"` + strings.Repeat("a", maxCompareBody) + `"}`, http.StatusBadRequest, "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out := postCompare(t, h, tc.method, tc.body)
			require.Equal(t, tc.code, code, out)
			require.Equal(t, "bad_data", out["errorType"])
			require.Contains(t, out["error"], tc.msg)
		})
	}
}
