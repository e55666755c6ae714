package dashboards

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUnescapeHTML(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"a \u003e 0"`, `"a > 0"`},
		{`"\u003c\u0026\u003e"`, `"<&>"`},
		{`"a\\u003e"`, `"a\\u003e"`}, // an escaped backslash, then text
		{`"q\"\u003e\\"`, `"q\">\\"`},
		{`"\u00e9"`, `"\u00e9"`},
		{`"\`, `"\`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.want, string(unescapeHTML([]byte(tc.in))))
		})
	}
}
