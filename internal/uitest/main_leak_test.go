package uitest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the browser, its connection and spanwatch are shut
// down when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
