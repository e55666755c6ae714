package query

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseHeaders(t *testing.T) {
	h, err := ParseHeaders([]string{"x-scope-orgid: team-a", "Authorization:Bearer  abc ", "X-Empty:"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"X-Scope-Orgid": "team-a", "Authorization": "Bearer  abc", "X-Empty": ""}, h)
	for in, want := range map[string]string{
		"NoColon":        `want "Name: value"`,
		": v":            `want "Name: value"`,
		"Bad Name: v":    `is not a header name`,
		"host: evil":     `Host is set by spanwatch itself`,
		"User-Agent: me": `User-Agent is set by spanwatch itself`,
	} {
		_, err := ParseHeaders([]string{in})
		require.ErrorContains(t, err, want, in)
	}
	_, err = ParseHeaders([]string{"A: 1", "a: 2"})
	require.ErrorContains(t, err, "A is given twice")
}

func TestRemoteRoundTripperReplacesHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	rt := Remote{Headers: map[string]string{"x-scope-orgid": "team-a"}}.RoundTripper(nil)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("X-Scope-OrgID", "team-b")
	req.Header.Set("X-Other", "kept")
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, []string{"team-a"}, got.Values("X-Scope-OrgID"))
	require.Equal(t, "kept", got.Get("X-Other"))
	require.Equal(t, "team-b", req.Header.Get("X-Scope-OrgID"), "the caller's request is not modified")
	require.Equal(t, http.DefaultTransport, Remote{}.RoundTripper(nil))
}
