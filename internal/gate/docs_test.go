package gate

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	tableStart = "<!-- thresholds: generated from regress.Thresholds, held by TestThresholdsTable -->\n"
	tableEnd   = "<!-- end of thresholds -->\n"
)

// thresholdsTable renders the thresholds' table of docs/gate.md from the
// one list of thresholds.
func thresholdsTable() string {
	var b strings.Builder
	b.WriteString("| flag | `gate:` key | default | valid | meaning |\n|---|---|---|---|---|\n")
	d := DefaultConfig()
	for _, f := range d.Fields() {
		fmt.Fprintf(&b, "| `--%s` | `%s` | `%s` | %s | %s |\n", f.Flag, f.Key, strconv.FormatFloat(*f.Value, 'g', -1, 64), f.RangeText(), f.Help)
	}
	return b.String()
}

// TestThresholdsTable: docs/gate.md's table of thresholds is the struct's.
func TestThresholdsTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "gate.md"))
	require.NoError(t, err)
	s := string(doc)
	i, j := strings.Index(s, tableStart), strings.Index(s, tableEnd)
	require.True(t, i >= 0 && j > i, "docs/gate.md has no generated thresholds table")
	require.Equal(t, thresholdsTable(), s[i+len(tableStart):j], "docs/gate.md's thresholds table; regenerate it from this expected text")
}
