// Package buildinfo reports spanwatch's version, set at link time with
// -ldflags "-X github.com/spanwatch/spanwatch/internal/buildinfo.Version=…"
// or read from the Go build information.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time; otherwise filled from debug.ReadBuildInfo.
var (
	Version  = ""
	Revision = ""
)

// Info is the build information of the running binary.
type Info struct {
	Version, Revision, GoVersion string
}

// Get returns the build information.
func Get() Info {
	i := Info{Version: Version, Revision: Revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && i.Revision == "" {
				i.Revision = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	if i.Revision == "" {
		i.Revision = "unknown"
	}
	return i
}

// String renders the information as `spanwatch version` prints it.
func (i Info) String() string {
	return fmt.Sprintf("spanwatch, version %s (revision: %s)\n  go version: %s\n  platform: %s/%s",
		i.Version, i.Revision, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// Collector returns the spanwatch_build_info gauge.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "spanwatch_build_info",
		Help: "A metric with a constant '1' value labelled by version, revision and goversion of spanwatch.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(i.Version, i.Revision, i.GoVersion).Set(1)
	return g
}
