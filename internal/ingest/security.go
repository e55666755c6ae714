package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spanwatch/spanwatch/internal/field"
)

// ReceiversConfig is the otlp section of the config file: TLS and
// authentication of each receiver. The listen addresses and the request
// size limit are flags.
type ReceiversConfig struct {
	// GRPC secures the OTLP/gRPC receiver.
	GRPC ServerConfig `yaml:"grpc"`
	// HTTP secures the OTLP/HTTP receiver.
	HTTP ServerConfig `yaml:"http"`
}

// Validate checks both receivers.
func (c *ReceiversConfig) Validate() error {
	if err := c.GRPC.Validate(); err != nil {
		return field.Under("grpc", err)
	}
	return field.Under("http", c.HTTP.Validate())
}

// SetDirectory resolves relative file paths against dir, the directory of
// the config file.
func (c *ReceiversConfig) SetDirectory(dir string) {
	c.GRPC.setDirectory(dir)
	c.HTTP.setDirectory(dir)
}

// ServerConfig secures one receiver.
type ServerConfig struct {
	// TLS, when set, serves TLS (and mutual TLS with client_ca_file).
	TLS *TLSConfig `yaml:"tls"`
	// Auth, when set, requires every request to authenticate.
	Auth *AuthConfig `yaml:"auth"`
}

// Validate checks the TLS and auth blocks.
func (c *ServerConfig) Validate() error {
	if c.TLS != nil {
		if err := c.TLS.Validate(); err != nil {
			return field.Under("tls", err)
		}
	}
	if c.Auth != nil {
		if err := c.Auth.Validate(); err != nil {
			return field.Under("auth", err)
		}
	}
	return nil
}

func (c *ServerConfig) setDirectory(dir string) {
	join := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if c.TLS != nil {
		join(&c.TLS.CertFile)
		join(&c.TLS.KeyFile)
		join(&c.TLS.ClientCAFile)
	}
	if c.Auth != nil {
		join(&c.Auth.BearerTokenFile)
		if c.Auth.BasicAuth != nil {
			join(&c.Auth.BasicAuth.PasswordFile)
		}
	}
}

// TLSConfig is a receiver's TLS, with the keys of the OpenTelemetry
// Collector's configtls.ServerConfig.
type TLSConfig struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires and verifies a client certificate
	// signed by one of its PEM certificates (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is the lowest TLS version accepted: "1.0" to "1.3";
	// empty means "1.2".
	MinVersion string `yaml:"min_version"`
	// MaxVersion is the highest: empty means the highest Go supports (1.3).
	MaxVersion string `yaml:"max_version"`
	// ReloadInterval, when positive, re-reads the certificate, key and
	// client CAs this often (on the next handshake after it elapsed), so
	// rotated files are picked up without a restart.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

var tlsVersions = map[string]uint16{
	"1.0": tls.VersionTLS10,
	"1.1": tls.VersionTLS11,
	"1.2": tls.VersionTLS12,
	"1.3": tls.VersionTLS13,
}

func tlsVersion(key, v string, def uint16) (uint16, error) {
	if v == "" {
		return def, nil
	}
	n, ok := tlsVersions[v]
	if !ok {
		return 0, field.Errorf(key, "unknown TLS version %q: use 1.0, 1.1, 1.2 or 1.3", v)
	}
	return n, nil
}

// Validate checks the keys without reading the files.
func (c *TLSConfig) Validate() error {
	switch {
	case c.CertFile == "":
		return field.Errorf("cert_file", "is required with tls")
	case c.KeyFile == "":
		return field.Errorf("key_file", "is required with tls")
	case c.ReloadInterval < 0:
		return field.Errorf("reload_interval", "must not be negative, got %v", c.ReloadInterval)
	}
	lo, err := tlsVersion("min_version", c.MinVersion, tls.VersionTLS12)
	if err != nil {
		return err
	}
	hi, err := tlsVersion("max_version", c.MaxVersion, tls.VersionTLS13)
	if err != nil {
		return err
	}
	if lo > hi {
		return field.Errorf("min_version", "%s is above max_version %s", c.MinVersion, c.MaxVersion)
	}
	return nil
}

// AuthConfig requires requests to authenticate with a bearer token or
// with HTTP basic authentication (exactly one of them).
type AuthConfig struct {
	// BearerToken is the token clients send as "Authorization: Bearer
	// <token>" (an OTLP exporter's headers setting).
	BearerToken string `yaml:"bearer_token"`
	// BearerTokenFile holds the token instead (read at start; surrounding
	// whitespace is dropped).
	BearerTokenFile string `yaml:"bearer_token_file"`
	// BasicAuth is the one user and password clients send.
	BasicAuth *BasicAuthConfig `yaml:"basic_auth"`
}

// BasicAuthConfig is one user of HTTP basic authentication.
type BasicAuthConfig struct {
	Username string `yaml:"username"`
	// Password, or PasswordFile (read at start; a trailing newline is
	// dropped).
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Validate checks that exactly one method is set, completely.
func (c *AuthConfig) Validate() error {
	n := 0
	for _, set := range []bool{c.BearerToken != "", c.BearerTokenFile != "", c.BasicAuth != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("set exactly one of bearer_token, bearer_token_file and basic_auth")
	}
	if b := c.BasicAuth; b != nil {
		if b.Username == "" {
			return field.Errorf("basic_auth.username", "is required with basic_auth")
		}
		if (b.Password == "") == (b.PasswordFile == "") {
			return field.Errorf("basic_auth", "set exactly one of password and password_file")
		}
	}
	return nil
}

// tlsSource hands out a receiver's server TLS configuration, re-reading its
// files every ReloadInterval.
type tlsSource struct {
	cfg        TLSConfig
	nextProtos []string
	logger     *slog.Logger
	now        func() time.Time

	mu     sync.Mutex
	loaded time.Time
	cur    *tls.Config
}

// newTLSSource loads the files once; an error names the file. A nil logger
// discards.
func newTLSSource(c TLSConfig, nextProtos []string, logger *slog.Logger) (*tlsSource, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &tlsSource{cfg: c, nextProtos: nextProtos, logger: logger, now: time.Now}
	cur, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur, s.loaded = cur, s.now()
	return s, nil
}

// serverConfig is what the listener or the gRPC credentials take: each
// handshake asks configForClient for the current configuration.
func (s *tlsSource) serverConfig() *tls.Config {
	c := s.current()
	return &tls.Config{
		MinVersion:         c.MinVersion,
		MaxVersion:         c.MaxVersion,
		NextProtos:         s.nextProtos,
		GetConfigForClient: s.configForClient,
	}
}

func (s *tlsSource) current() *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *tlsSource) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if iv := s.cfg.ReloadInterval; iv > 0 && s.now().Sub(s.loaded) >= iv {
		s.loaded = s.now()
		if c, err := s.load(); err != nil {
			s.logger.Warn("reloading TLS files failed; keeping the previous certificate", "err", err)
		} else {
			s.cur = c
		}
	}
	return s.cur, nil
}

func (s *tlsSource) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading cert_file %s and key_file %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	lo, _ := tlsVersion("", s.cfg.MinVersion, tls.VersionTLS12) // checked by Validate
	hi, _ := tlsVersion("", s.cfg.MaxVersion, tls.VersionTLS13)
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   lo,
		MaxVersion:   hi,
		NextProtos:   s.nextProtos,
	}
	if s.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(s.cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file %s holds no PEM certificate", s.cfg.ClientCAFile)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// authenticator checks the Authorization header of a request.
type authenticator struct {
	scheme string   // "Bearer" or "Basic", for WWW-Authenticate
	want   [32]byte // SHA-256 of the expected header value
}

// errUnauthenticated is the message of a rejected request.
var errUnauthenticated = errors.New("missing or invalid credentials in the Authorization header")

// newAuthenticator reads the token or password files; nil config means no
// authentication.
func newAuthenticator(c *AuthConfig) (*authenticator, error) {
	if c == nil {
		return nil, nil
	}
	switch {
	case c.BasicAuth != nil:
		pw := c.BasicAuth.Password
		if c.BasicAuth.PasswordFile != "" {
			b, err := os.ReadFile(c.BasicAuth.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("reading password_file: %w", err)
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		v := base64.StdEncoding.EncodeToString([]byte(c.BasicAuth.Username + ":" + pw))
		return &authenticator{scheme: "Basic", want: sha256.Sum256([]byte("Basic " + v))}, nil
	default:
		tok := c.BearerToken
		if c.BearerTokenFile != "" {
			b, err := os.ReadFile(c.BearerTokenFile)
			if err != nil {
				return nil, fmt.Errorf("reading bearer_token_file: %w", err)
			}
			tok = strings.TrimSpace(string(b))
			if tok == "" {
				return nil, fmt.Errorf("bearer_token_file %s is empty", c.BearerTokenFile)
			}
		}
		return &authenticator{scheme: "Bearer", want: sha256.Sum256([]byte("Bearer " + tok))}, nil
	}
}

// check reports whether the Authorization header value is the expected
// one. The scheme is case-insensitive (RFC 9110); the comparison takes the
// same time whatever the value.
func (a *authenticator) check(header string) bool {
	if scheme, rest, ok := strings.Cut(header, " "); ok && strings.EqualFold(scheme, a.scheme) {
		header = a.scheme + " " + strings.TrimLeft(rest, " ")
	}
	got := sha256.Sum256([]byte(header))
	return subtle.ConstantTimeCompare(got[:], a.want[:]) == 1
}

// challenge is the WWW-Authenticate value of a 401.
func (a *authenticator) challenge() string { return a.scheme + ` realm="OTLP"` }
