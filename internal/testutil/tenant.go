package testutil

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
)

// TenantProxy stands in for a multi-tenant store such as Mimir behind an
// authenticating gateway: it forwards to target only requests that carry
// exactly one X-Scope-OrgID equal to tenant and, when user is set, basic
// authentication user:password; others get 401. Denied counts them.
type TenantProxy struct {
	*httptest.Server
	denied atomic.Int64
}

// Denied reports how many requests were refused.
func (p *TenantProxy) Denied() int64 { return p.denied.Load() }

// StartTenantProxy starts a TenantProxy in front of target (a base URL).
func StartTenantProxy(t testing.TB, target, tenant, user, password string) *TenantProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &TenantProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		if ids := r.Header.Values("X-Scope-OrgID"); len(ids) != 1 || ids[0] != tenant || (user != "" && (!ok || u != user || pw != password)) {
			p.denied.Add(1)
			http.Error(w, "no org id or bad credentials", http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}
