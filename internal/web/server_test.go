package web

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/spanwatch/spanwatch/internal/testutil/testcerts"
)

// startServer runs a Server for a handler answering "ok" with the web
// configuration file and returns its address.
func startServer(t *testing.T, configFile string) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	s, err := NewServer("test", "127.0.0.1:0", h, nil, ServerOptions{ConfigFile: configFile})
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	return s.Addr().String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	require.NoError(t, err)
	return string(h)
}

type result struct {
	code int
	body string
	auth string // WWW-Authenticate
}

func get(t *testing.T, c *http.Client, url, user, password string) (result, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate")}, nil
}

// TestServerTLSClientCertsAndBasicAuth: with a web configuration file that
// asks for TLS, a client certificate signed by its CA and basic
// authentication, only a client with all three gets through; a client
// without credentials gets 401 with a message and a Basic challenge.
func TestServerTLSClientCertsAndBasicAuth(t *testing.T) {
	certs := testcerts.New(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "web.yml", `tls_server_config:
  cert_file: `+certs.ServerCert+`
  key_file: `+certs.ServerKey+`
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: `+certs.CA+`
basic_auth_users:
  alice: `+bcryptHash(t, "s3cret")+`
`)
	addr := startServer(t, file)
	client := func(tc *tls.Config) *http.Client {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	withCert := client(certs.ClientTLS(t, true))

	t.Run("credentials", func(t *testing.T) {
		r, err := get(t, withCert, "https://"+addr+"/", "alice", "s3cret")
		require.NoError(t, err)
		require.Equal(t, result{code: 200, body: "ok"}, r)
	})
	for _, tt := range []struct{ name, user, password string }{
		{"no credentials", "", ""},
		{"wrong password", "alice", "guess"},
		{"unknown user", "bob", "s3cret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := get(t, withCert, "https://"+addr+"/", tt.user, tt.password)
			require.NoError(t, err)
			require.Equal(t, http.StatusUnauthorized, r.code)
			require.Equal(t, "Basic", r.auth)
			require.Contains(t, r.body, "Unauthorized")
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		_, err := get(t, client(certs.ClientTLS(t, false)), "https://"+addr+"/", "alice", "s3cret")
		require.Error(t, err, "the handshake needs a client certificate")
	})
	t.Run("plain HTTP", func(t *testing.T) {
		r, err := get(t, client(nil), "http://"+addr+"/", "alice", "s3cret")
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, r.code)
		require.Contains(t, r.body, "HTTPS")
	})
}

// TestServerBasicAuthWithoutTLS: a file with users only keeps plain HTTP
// and asks for the password.
func TestServerBasicAuthWithoutTLS(t *testing.T) {
	file := writeFile(t, t.TempDir(), "web.yml", "basic_auth_users:\n  alice: "+bcryptHash(t, "s3cret")+"\n")
	addr := startServer(t, file)
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	r, err := get(t, c, "http://"+addr+"/", "", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, r.code)
	r, err = get(t, c, "http://"+addr+"/", "alice", "s3cret")
	require.NoError(t, err)
	require.Equal(t, result{code: 200, body: "ok"}, r)
}

// TestServerWithoutConfigFile: plain HTTP, no authentication.
func TestServerWithoutConfigFile(t *testing.T) {
	addr := startServer(t, "")
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	r, err := get(t, c, "http://"+addr+"/", "", "")
	require.NoError(t, err)
	require.Equal(t, result{code: 200, body: "ok"}, r)
}

// TestBadConfigFile: a file that does not parse, a password that is not a
// bcrypt hash, a certificate that does not load: NewServer fails, naming
// the file, and binds nothing.
func TestBadConfigFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, content, want string }{
		{"unknown key", "tls_server_config:\n  cert_fil: x\n", "cert_fil"},
		{"not yaml", "basic_auth_users: [\n", "yaml"},
		{"plain password", "basic_auth_users:\n  alice: s3cret\n", "hash"},
		{"missing certificate", "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "missing.crt"},
		{"key without certificate", "tls_server_config:\n  key_file: server.key\n", "cert"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, dir, "web.yml", tt.content)
			_, err := NewServer("test", "127.0.0.1:0", http.NotFoundHandler(), nil, ServerOptions{ConfigFile: file})
			require.Error(t, err)
			require.Contains(t, err.Error(), "web config file "+file)
			require.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := NewServer("test", "127.0.0.1:0", http.NotFoundHandler(), nil, ServerOptions{ConfigFile: filepath.Join(dir, "absent.yml")})
	require.ErrorContains(t, err, "absent.yml")
}
