package ingest

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/encoding/protojson"

	spb "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/spanwatch/spanwatch/internal/field"
	"github.com/spanwatch/spanwatch/internal/testutil/testcerts"
)

type spanExporter interface {
	ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error
	Shutdown(context.Context) error
}

// client is how an OTLP exporter connects: TLS (nil: plain), and headers.
type client struct {
	tls     *tls.Config
	headers map[string]string
}

// export sends two spans with a real OpenTelemetry SDK exporter.
func export(t *testing.T, protocol, addr string, c client) error {
	t.Helper()
	ctx := context.Background()
	var (
		e   spanExporter
		err error
	)
	if protocol == ProtocolGRPC {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithHeaders(c.headers),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}), otlptracegrpc.WithTimeout(5 * time.Second)}
		if c.tls != nil {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(c.tls)))
		} else {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		e, err = otlptracegrpc.New(ctx, opts...)
	} else {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(addr), otlptracehttp.WithHeaders(c.headers),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}), otlptracehttp.WithTimeout(5 * time.Second)}
		if c.tls != nil {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(c.tls))
		} else {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		e, err = otlptracehttp.New(ctx, opts...)
	}
	require.NoError(t, err)
	defer func() { _ = e.Shutdown(ctx) }()
	return e.ExportSpans(ctx, tracetest.SpanStubs{{Name: "a"}, {Name: "b"}}.Snapshots())
}

func startSecured(t *testing.T, grpcCfg, httpCfg ServerConfig) (*Receiver, *spanConsumer) {
	t.Helper()
	c := &spanConsumer{}
	r, err := New(Config{GRPCAddress: "127.0.0.1:0", HTTPAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20, GRPC: grpcCfg, HTTP: httpCfg},
		c, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, r.Start())
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, c
}

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// TestTLSAndAuthWithOTLPExporters: the OpenTelemetry SDK's gRPC and HTTP
// exporters reach a receiver with mutual TLS and a bearer token, or with
// TLS and basic authentication, only with the right certificate and
// credentials; every refusal by the receiver is counted with its reason.
func TestTLSAndAuthWithOTLPExporters(t *testing.T) {
	certs := testcerts.New(t)
	mtls := &TLSConfig{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: certs.CA}
	serverTLS := &TLSConfig{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, MinVersion: "1.3"}
	bearer := ServerConfig{TLS: mtls, Auth: &AuthConfig{BearerTokenFile: writeSecret(t, "t0ken\n")}}
	basic := ServerConfig{TLS: serverTLS, Auth: &AuthConfig{BasicAuth: &BasicAuthConfig{Username: "otel", Password: "pw"}}}
	withCert, noCert := certs.ClientTLS(t, true), certs.ClientTLS(t, false)
	token := map[string]string{"authorization": "Bearer t0ken"}
	basicAuth := map[string]string{"authorization": "Basic b3RlbDpwdw=="} // otel:pw

	for _, protocol := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(protocol+" mTLS and bearer token", func(t *testing.T) {
			r, c := startSecured(t, bearer, bearer)
			addr := r.GRPCAddr().String()
			if protocol == ProtocolHTTP {
				addr = r.HTTPAddr().String()
			}
			require.NoError(t, export(t, protocol, addr, client{withCert, token}))
			_, spans := c.got()
			require.Equal(t, 2, spans)

			err := export(t, protocol, addr, client{withCert, nil})
			require.Error(t, err)
			require.Regexp(t, `Unauthenticated|401`, err.Error())
			require.Error(t, export(t, protocol, addr, client{withCert, map[string]string{"authorization": "Bearer wrong"}}))
			require.Error(t, export(t, protocol, addr, client{noCert, token}), "no client certificate")
			require.Error(t, export(t, protocol, addr, client{nil, token}), "no TLS")
			_, spans = c.got()
			require.Equal(t, 2, spans, "nothing counted from refused requests")
			require.Eventually(t, func() bool {
				return promtestutil.ToFloat64(r.m.rejected.WithLabelValues(protocol, ReasonUnauthenticated)) == 2
			}, 5*time.Second, 10*time.Millisecond, "two requests without the right token")
		})
		t.Run(protocol+" TLS and basic auth", func(t *testing.T) {
			r, c := startSecured(t, basic, basic)
			addr := r.GRPCAddr().String()
			if protocol == ProtocolHTTP {
				addr = r.HTTPAddr().String()
			}
			require.NoError(t, export(t, protocol, addr, client{noCert, basicAuth}))
			require.Error(t, export(t, protocol, addr, client{noCert, token}))
			tls12 := certs.ClientTLS(t, false)
			tls12.MaxVersion = tls.VersionTLS12
			require.Error(t, export(t, protocol, addr, client{tls12, basicAuth}), "min_version 1.3")
			_, spans := c.got()
			require.Equal(t, 2, spans)
		})
	}
}

// TestHTTPUnauthenticatedAnswer: a 401 names the scheme in WWW-Authenticate
// and carries a google.rpc.Status with a message, before the method or the
// body are looked at.
func TestHTTPUnauthenticatedAnswer(t *testing.T) {
	r, c := startSecured(t, ServerConfig{}, ServerConfig{Auth: &AuthConfig{BearerToken: "t0ken"}})
	url := "http://" + r.HTTPAddr().String() + "/v1/traces"
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		req, err := http.NewRequest(method, url, bytes.NewReader([]byte("not OTLP")))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentTypeJSON)
		req.Header.Set("Authorization", "Bearer nope")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, method)
		require.Equal(t, `Bearer realm="OTLP"`, resp.Header.Get("WWW-Authenticate"))
		var st spb.Status
		require.NoError(t, protojson.Unmarshal(body, &st), "%s", body)
		require.Equal(t, int32(16), st.Code, "Unauthenticated")
		require.Contains(t, st.Message, "credentials")
	}
	calls, _ := c.got()
	require.Zero(t, calls)
	require.Equal(t, 2.0, promtestutil.ToFloat64(r.m.rejected.WithLabelValues(ProtocolHTTP, ReasonUnauthenticated)))

	// The scheme is case-insensitive; the token is not.
	for header, ok := range map[string]bool{"bearer t0ken": true, "Bearer  t0ken": true, "Bearer T0KEN": false, "t0ken": false, "": false} {
		require.Equal(t, ok, r.httpAuth.check(header), "%q", header)
	}
}

// TestTLSReload: with reload_interval, a rotated certificate is served from
// the next handshake on, without a restart; without it the first stays.
func TestTLSReload(t *testing.T) {
	first, second := testcerts.New(t), testcerts.New(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cp := func(from, to string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, b, 0o600))
	}
	cp(first.ServerCert, cert)
	cp(first.ServerKey, key)
	src, err := newTLSSource(TLSConfig{CertFile: cert, KeyFile: key, ReloadInterval: time.Minute}, nil, nil)
	require.NoError(t, err)
	now := time.Now()
	src.now = func() time.Time { return now }
	leaf := func() []byte {
		c, err := src.configForClient(nil)
		require.NoError(t, err)
		return c.Certificates[0].Certificate[0]
	}
	before := leaf()
	cp(second.ServerCert, cert)
	cp(second.ServerKey, key)
	require.Equal(t, before, leaf(), "not before the interval")
	now = now.Add(time.Minute)
	after := leaf()
	require.NotEqual(t, before, after, "rotated")

	// A broken file on reload keeps the last good certificate.
	require.NoError(t, os.WriteFile(key, []byte("garbage"), 0o600))
	now = now.Add(time.Minute)
	require.Equal(t, after, leaf())
}

func TestSecurityConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  ServerConfig
		path string
		want string
	}{
		{"cert without key", ServerConfig{TLS: &TLSConfig{CertFile: "a"}}, "tls.key_file", "is required with tls"},
		{"no cert", ServerConfig{TLS: &TLSConfig{KeyFile: "a"}}, "tls.cert_file", "is required with tls"},
		{"bad version", ServerConfig{TLS: &TLSConfig{CertFile: "a", KeyFile: "b", MinVersion: "1.4"}}, "tls.min_version", `unknown TLS version "1.4"`},
		{"min above max", ServerConfig{TLS: &TLSConfig{CertFile: "a", KeyFile: "b", MinVersion: "1.3", MaxVersion: "1.2"}}, "tls.min_version", "above max_version"},
		{"negative reload", ServerConfig{TLS: &TLSConfig{CertFile: "a", KeyFile: "b", ReloadInterval: -time.Second}}, "tls.reload_interval", "negative"},
		{"two methods", ServerConfig{Auth: &AuthConfig{BearerToken: "a", BasicAuth: &BasicAuthConfig{Username: "u", Password: "p"}}}, "auth", "exactly one"},
		{"no method", ServerConfig{Auth: &AuthConfig{}}, "auth", "exactly one"},
		{"no user", ServerConfig{Auth: &AuthConfig{BasicAuth: &BasicAuthConfig{Password: "p"}}}, "auth.basic_auth.username", "required"},
		{"two passwords", ServerConfig{Auth: &AuthConfig{BasicAuth: &BasicAuthConfig{Username: "u", Password: "p", PasswordFile: "f"}}}, "auth.basic_auth", "exactly one of password and password_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := ReceiversConfig{HTTP: tt.cfg}
			err := rc.Validate()
			var fe *field.Error
			require.ErrorAs(t, err, &fe)
			require.Equal(t, "http."+tt.path, fe.Path)
			require.ErrorContains(t, err, tt.want)
		})
	}
	ok := ReceiversConfig{GRPC: ServerConfig{TLS: &TLSConfig{CertFile: "a", KeyFile: "b", MinVersion: "1.2", MaxVersion: "1.3"}, Auth: &AuthConfig{BearerToken: "t"}}}
	require.NoError(t, ok.Validate())

	// Files that do not load: New fails, naming the receiver and the file.
	certs := testcerts.New(t)
	for _, tt := range []struct {
		name string
		cfg  ServerConfig
		want string
	}{
		{"missing certificate", ServerConfig{TLS: &TLSConfig{CertFile: "/nonexistent/tls.crt", KeyFile: certs.ServerKey}}, "OTLP/HTTP receiver TLS: loading cert_file /nonexistent/tls.crt"},
		{"CA without certificates", ServerConfig{TLS: &TLSConfig{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: writeSecret(t, "x")}}, "holds no PEM certificate"},
		{"missing token file", ServerConfig{Auth: &AuthConfig{BearerTokenFile: "/nonexistent/token"}}, "OTLP/HTTP receiver auth: reading bearer_token_file"},
		{"empty token file", ServerConfig{Auth: &AuthConfig{BearerTokenFile: writeSecret(t, "\n")}}, "is empty"},
		{"missing password file", ServerConfig{Auth: &AuthConfig{BasicAuth: &BasicAuthConfig{Username: "u", PasswordFile: "/nonexistent/pw"}}}, "reading password_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{HTTPAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20, HTTP: tt.cfg}, &fakeConsumer{}, nil, nil)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestSetDirectory(t *testing.T) {
	rc := ReceiversConfig{
		GRPC: ServerConfig{TLS: &TLSConfig{CertFile: "tls/a.crt", KeyFile: "/abs/a.key", ClientCAFile: "ca.crt"}},
		HTTP: ServerConfig{Auth: &AuthConfig{BearerTokenFile: "token", BasicAuth: &BasicAuthConfig{PasswordFile: "pw"}}},
	}
	rc.SetDirectory("/etc/spanwatch")
	require.Equal(t, "/etc/spanwatch/tls/a.crt", rc.GRPC.TLS.CertFile)
	require.Equal(t, "/abs/a.key", rc.GRPC.TLS.KeyFile)
	require.Equal(t, "/etc/spanwatch/ca.crt", rc.GRPC.TLS.ClientCAFile)
	require.Equal(t, "/etc/spanwatch/token", rc.HTTP.Auth.BearerTokenFile)
	require.Equal(t, "/etc/spanwatch/pw", rc.HTTP.Auth.BasicAuth.PasswordFile)
}
