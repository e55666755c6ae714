package app_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/credentials"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/ingest"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
	"github.com/spanwatch/spanwatch/internal/testutil/testcerts"
	"github.com/spanwatch/spanwatch/internal/web"
)

type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, target string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// TestWebConfigFileOnBothPorts: one web configuration file puts TLS with
// client certificates and basic authentication on the web port (API, UI,
// health, self-metrics) and on the exposition port alike.
func TestWebConfigFileOnBothPorts(t *testing.T) {
	certs := testcerts.New(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(file, []byte(`tls_server_config:
  cert_file: `+certs.ServerCert+`
  key_file: `+certs.ServerKey+`
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: `+certs.CA+`
basic_auth_users:
  prometheus: `+string(hash)+`
`), 0o600))
	a := startApp(t, nil, func(o *app.Options) { o.WebConfigFile = file })
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t, true)}}
	t.Cleanup(c.CloseIdleConnections)
	auth := map[string]string{"Authorization": "Basic " + basic("prometheus", "s3cret")}
	for _, target := range []string{
		"https://" + a.WebAddr().String() + "/api/v1/query?query=1",
		"https://" + a.WebAddr().String() + "/-/healthy",
		"https://" + a.WebAddr().String() + "/metrics",
		"https://" + a.WebAddr().String() + "/",
		"https://" + a.MetricsAddr().String() + "/metrics",
	} {
		t.Run(target, func(t *testing.T) {
			r := do(t, c, http.MethodGet, target, nil)
			require.Equal(t, http.StatusUnauthorized, r.code)
			require.NotEmpty(t, strings.TrimSpace(r.body), "a 401 carries a message")
			require.Equal(t, http.StatusOK, do(t, c, http.MethodGet, target, auth).code)
		})
	}
	// Plain HTTP is refused on both ports.
	plain := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(plain.CloseIdleConnections)
	for _, addr := range []string{a.WebAddr().String(), a.MetricsAddr().String()} {
		require.Equal(t, http.StatusBadRequest, do(t, plain, http.MethodGet, "http://"+addr+"/metrics", auth).code)
	}
}

func basic(user, password string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, password)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestBadWebConfigFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(file, []byte("basic_auth_users:\n  alice: not-a-hash\n"), 0o600))
	opts := app.DefaultOptions()
	opts.WebConfigFile = file
	opts.Storage.Path = t.TempDir()
	_, err := app.New(opts)
	require.ErrorContains(t, err, "web config file "+file)
}

// TestWebSafetyHeadersAndCORS: every response of the web port carries the
// browser safety headers; the UI page its Content-Security-Policy; no
// response carries CORS headers unless --web.cors.origin is set, and then
// only the API answers matching origins and preflights.
func TestWebSafetyHeadersAndCORS(t *testing.T) {
	plain := startApp(t, nil)
	c := http.DefaultClient
	base := "http://" + plain.WebAddr().String()
	origin := map[string]string{"Origin": "https://grafana.example.com"}
	for _, p := range []string{"/", "/compare", "/api/v1/query?query=1", "/api/v1/nope", "/-/ready", "/metrics"} {
		r := do(t, c, http.MethodGet, base+p, origin)
		require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), p)
		require.Equal(t, "DENY", r.header.Get("X-Frame-Options"), p)
		require.Equal(t, "no-referrer", r.header.Get("Referrer-Policy"), p)
		require.Empty(t, r.header.Get("Access-Control-Allow-Origin"), p)
	}
	csp := do(t, c, http.MethodGet, base+"/", nil).header.Get("Content-Security-Policy")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.Contains(t, csp, "default-src")

	re, err := web.CompileCORSOrigin(`https://grafana\.example\.com`)
	require.NoError(t, err)
	cors := startApp(t, nil, func(o *app.Options) { o.CORSOrigin = re })
	base = "http://" + cors.WebAddr().String()
	r := do(t, c, http.MethodGet, base+"/api/v1/query?query=1", origin)
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "https://grafana.example.com", r.header.Get("Access-Control-Allow-Origin"))
	r = do(t, c, http.MethodGet, base+"/api/v1/query?query=1", map[string]string{"Origin": "https://evil.example.net"})
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
	r = do(t, c, http.MethodOptions, base+"/api/v1/compare", map[string]string{
		"Origin": "https://grafana.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	require.Equal(t, http.StatusNoContent, r.code)
	require.Equal(t, "https://grafana.example.com", r.header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, r.header.Get("Access-Control-Allow-Headers"), "Content-Type")
	require.Empty(t, do(t, c, http.MethodGet, base+"/", origin).header.Get("Access-Control-Allow-Origin"), "the UI is not the API")
}

// TestOTLPSectionSecuresTheReceivers: the config file's otlp section
// reaches the receivers: an SDK exporter with the CA and the token gets its
// spans counted; a request without the token is refused and counted.
func TestOTLPSectionSecuresTheReceivers(t *testing.T) {
	certs := testcerts.New(t)
	cfg := config.Default()
	sc := ingest.ServerConfig{
		TLS:  &ingest.TLSConfig{CertFile: certs.ServerCert, KeyFile: certs.ServerKey},
		Auth: &ingest.AuthConfig{BearerToken: "t0ken"},
	}
	cfg.OTLP = ingest.ReceiversConfig{GRPC: sc, HTTP: sc}
	a := startApp(t, cfg)
	ctx := context.Background()
	token := map[string]string{"Authorization": "Bearer t0ken"}
	g, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr().String()), otlptracegrpc.WithHeaders(token),
		otlptracegrpc.WithTLSCredentials(credentials.NewTLS(certs.ClientTLS(t, false))), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	require.NoError(t, err)
	h, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr().String()), otlptracehttp.WithHeaders(token),
		otlptracehttp.WithTLSClientConfig(certs.ClientTLS(t, false)), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	require.NoError(t, err)
	for _, e := range []exporter{g, h} {
		require.NoError(t, e.ExportSpans(ctx, spantest.Spans(spantest.Stub{Service: "cart", Name: "GET /cart", Dur: time.Millisecond})))
		require.NoError(t, e.Shutdown(ctx))
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t, false)}}
	t.Cleanup(c.CloseIdleConnections)
	r := do(t, c, http.MethodPost, "https://"+a.OTLPHTTPAddr().String()+"/v1/traces", map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusUnauthorized, r.code)
	require.Contains(t, r.body, "credentials")
	flushTwice(a)
	fams := scrape(t, a)
	require.Equal(t, 2.0, sumCounter(fams["traces_span_metrics_calls_total"], map[string]string{"service_name": "cart"}))
	require.Equal(t, 1.0, counterValue(t, a.Registry(), "spanwatch_ingest_rejected_requests_total", map[string]string{"protocol": "http", "reason": "unauthenticated"}))
}
