package deploy

// The Dockerfile, checked without a container engine: its stages and
// runtime settings are parsed, and its Go build command is run as written
// (with the build arguments set and the output path moved to a temporary
// directory). The binary it produces is the one the manifest tests ask for
// its flags.

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	stage     string // the stage's name (AS …), or its image
}

// dockerfile is the parsed Dockerfile.
type dockerfile struct {
	instructions []instruction
	stages       map[string]string // name → base image
	last         string            // the final stage
}

func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	data, err := os.ReadFile(moduleFile(t, "Dockerfile"))
	require.NoError(t, err)
	df := &dockerfile{stages: map[string]string{}}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	stage := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		args = strings.TrimSpace(args)
		if cmd == "FROM" {
			f := strings.Fields(args)
			if strings.HasPrefix(f[0], "--platform=") {
				f = f[1:]
			}
			stage = f[0]
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stage = f[2]
			}
			df.stages[stage] = f[0]
			df.last = stage
		}
		df.instructions = append(df.instructions, instruction{cmd: cmd, args: args, stage: stage})
	}
	return df
}

// in returns the instructions cmd of stage.
func (df *dockerfile) in(stage, cmd string) []string {
	var out []string
	for _, i := range df.instructions {
		if i.stage == stage && i.cmd == cmd {
			out = append(out, i.args)
		}
	}
	return out
}

// goBuild returns the RUN instruction with the Go build and its stage.
func (df *dockerfile) goBuild(t *testing.T) instruction {
	t.Helper()
	var found []instruction
	for _, i := range df.instructions {
		if i.cmd == "RUN" && strings.Contains(i.args, "go build") {
			found = append(found, i)
		}
	}
	require.Len(t, found, 1, "Dockerfile: one RUN with the Go build")
	return found[0]
}

// outputFlag is the -o argument of a go build command line.
var outputFlag = regexp.MustCompile(`(^|\s)-o\s+(\S+)`)

// built is the binary of the Dockerfile's Go build, made once per run.
var built struct {
	once      sync.Once
	dir, path string
	err       error
	version   string
	revision  string
}

// buildBinary runs the Dockerfile's Go build for this machine's platform
// and returns the binary. It skips under -short: the build takes minutes.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds spanwatch with the Dockerfile's command; skipped with -short")
	}
	df := parseDockerfile(t)
	run := df.goBuild(t)
	root := moduleFile(t)
	built.once.Do(func() {
		built.version, built.revision = "v0.0.0-imagetest", "0123456789abcdef"
		built.dir, built.err = os.MkdirTemp("", "spanwatch-image-test-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "spanwatch")
		m := outputFlag.FindStringSubmatch(run.args)
		if m == nil {
			built.err = fmt.Errorf("the Go build has no -o: %s", run.args)
			return
		}
		script := outputFlag.ReplaceAllString(run.args, "${1}-o "+built.path)
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = root
		// The image's build runs with no GOFLAGS; so does this one.
		cmd.Env = append(os.Environ(), "GOFLAGS=",
			"VERSION="+built.version, "REVISION="+built.revision,
			"TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
		out, err := cmd.CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("%s: %w\n%s", script, err, out)
		}
	})
	require.NoError(t, built.err)
	return built.path
}

// flagSet is what a subcommand's --help lists.
type flagSet struct {
	names    map[string]bool   // every flag, without dashes
	bools    map[string]bool   // flags that take no value (--[no-]name)
	defaults map[string]string // flag → what the help shows after "=": a default, or a placeholder
}

var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--(\[no-\])?([a-z0-9][a-z0-9.-]*)(?:=("[^"]*"|\S+))?`)

// helpFlags runs `spanwatch <cmd> --help` and parses its flag list.
func helpFlags(t *testing.T, cmd string) flagSet {
	t.Helper()
	bin := buildBinary(t)
	out, err := exec.Command(bin, cmd, "--help").CombinedOutput()
	require.NoError(t, err, "%s %s --help: %s", bin, cmd, out)
	fs := flagSet{names: map[string]bool{}, bools: map[string]bool{}, defaults: map[string]string{}}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		fs.names[m[2]] = true
		if m[1] != "" {
			fs.bools[m[2]] = true
		}
		if m[3] != "" {
			fs.defaults[m[2]] = strings.Trim(m[3], `"`)
		}
	}
	require.Contains(t, fs.names, "help", "%s --help lists no flags?\n%s", cmd, out)
	return fs
}

// parseArgs checks command-line arguments against fs: every flag exists,
// takes a value when it needs one (as --name=value), and is given once
// unless repeatable. It returns the values by flag.
func parseArgs(t *testing.T, fs flagSet, args []string, what string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, a := range args {
		require.True(t, strings.HasPrefix(a, "--"), "%s: %q: flags only, as --name=value", what, a)
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case fs.bools[name]:
			require.False(t, hasValue, "%s: --%s takes no value", what, name)
			value = "true"
		case strings.HasPrefix(name, "no-") && fs.bools[strings.TrimPrefix(name, "no-")]:
			name, value = strings.TrimPrefix(name, "no-"), "false"
		default:
			require.True(t, fs.names[name], "%s: no flag --%s", what, name)
			require.True(t, hasValue, "%s: --%s needs a value (--%s=VALUE)", what, name, name)
		}
		out[name] = append(out[name], value)
	}
	return out
}

// TestDockerfile checks the image's stages and runtime settings, runs its
// Go build and checks the binary: static, built with -trimpath and no cgo,
// and carrying the version given as a build argument.
func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)

	// Pinned bases: the Go of go.mod, a node image for the UI, distroless
	// static nonroot at run time.
	gomod, err := os.ReadFile(moduleFile(t, "go.mod"))
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, goVersion, "go.mod has no go line")
	run := df.goBuild(t)
	require.Equal(t, "golang:"+string(goVersion[1])+"-bookworm", df.stages[run.stage],
		"the build stage's Go is go.mod's")
	for name, image := range df.stages {
		require.Regexp(t, `^[a-z0-9./-]+:[A-Za-z0-9._-]+$`, image, "stage %s: an image pinned by tag", name)
		require.NotRegexp(t, `:latest$`, image, "stage %s", name)
	}
	require.Equal(t, "gcr.io/distroless/static-debian12:nonroot", df.stages[df.last])

	// The UI stage runs the Makefile's `ui` steps; the Go stage embeds its
	// output where ui/build.mjs writes it.
	ui := ""
	for name, image := range df.stages {
		if strings.HasPrefix(image, "node:") {
			ui = name
		}
	}
	require.NotEmpty(t, ui, "a node stage builds the UI")
	uiRuns := strings.Join(df.in(ui, "RUN"), "\n")
	require.Contains(t, uiRuns, "npm ci")
	require.Contains(t, uiRuns, "npm run build")
	buildMjs, err := os.ReadFile(moduleFile(t, "ui", "build.mjs"))
	require.NoError(t, err)
	require.Contains(t, string(buildMjs), `path.join(here, "..", "internal", "web", "assets", "dist")`)
	require.Contains(t, df.in(run.stage, "COPY"), "--from="+ui+" /src/internal/web/assets/dist internal/web/assets/dist")

	// The build command: static, trimmed, version stamped.
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath",
		"-X github.com/spanwatch/spanwatch/internal/buildinfo.Version=${VERSION}",
		"-X github.com/spanwatch/spanwatch/internal/buildinfo.Revision=${REVISION}",
		"./cmd/spanwatch"} {
		require.Contains(t, run.args, want)
	}
	out := outputFlag.FindStringSubmatch(run.args)
	require.NotNil(t, out)
	binInImage := ""
	for _, c := range df.in(df.last, "COPY") {
		if f := strings.Fields(c); len(f) == 3 && f[0] == "--from="+run.stage && f[1] == out[2] {
			binInImage = f[2]
		}
	}
	require.NotEmpty(t, binInImage, "the final stage copies %s", out[2])

	// Runtime: a numeric non-root user (runAsNonRoot can verify only a
	// number), the binary as entrypoint, serve with its data on the volume.
	user := df.in(df.last, "USER")
	require.Len(t, user, 1)
	uid, _, _ := strings.Cut(user[0], ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER %s: numeric", user[0])
	require.NotZero(t, n, "USER is not root")
	require.Equal(t, []string{`["` + binInImage + `"]`}, df.in(df.last, "ENTRYPOINT"))
	volumes := df.in(df.last, "VOLUME")
	require.Len(t, volumes, 1)
	cmdLine := df.in(df.last, "CMD")
	require.Len(t, cmdLine, 1)
	require.Equal(t, `["serve", "--storage.path=`+volumes[0]+`"]`, cmdLine[0])
	chowned := false
	for _, c := range df.in(df.last, "COPY") {
		f := strings.Fields(c)
		chowned = chowned || slices.Contains(f, "--chown="+user[0]) && f[len(f)-1] == volumes[0]
	}
	require.True(t, chowned, "the final stage creates %s owned by %s, so that a new volume is writable", volumes[0], user[0])

	bin := buildBinary(t)
	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		require.NoError(t, err)
		defer f.Close()
		for _, p := range f.Progs {
			require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary asks for a dynamic loader")
			require.NotEqual(t, elf.PT_DYNAMIC, p.Type, "the binary has a dynamic section")
		}
		libs, err := f.ImportedLibraries()
		require.NoError(t, err)
		require.Empty(t, libs)
	})
	t.Run("build settings", func(t *testing.T) {
		info, err := buildinfo.ReadFile(bin)
		require.NoError(t, err)
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		require.Equal(t, "0", settings["CGO_ENABLED"])
		require.Equal(t, "true", settings["-trimpath"])
		require.Equal(t, runtime.GOOS, settings["GOOS"], "GOOS from TARGETOS")
		require.Equal(t, runtime.GOARCH, settings["GOARCH"], "GOARCH from TARGETARCH")
		// With -trimpath the go command does not record -ldflags; the
		// version test below sees what they set.
	})
	t.Run("version", func(t *testing.T) {
		for _, args := range [][]string{{"--version"}, {"version"}} {
			var stdout bytes.Buffer
			cmd := exec.Command(bin, args...)
			cmd.Stdout = &stdout
			require.NoError(t, cmd.Run())
			require.Contains(t, stdout.String(), fmt.Sprintf("spanwatch, version %s (revision: %s)", built.version, built.revision))
		}
	})
	t.Run("CMD flags", func(t *testing.T) {
		var args []string
		require.NoError(t, json.Unmarshal([]byte(cmdLine[0]), &args))
		require.Equal(t, "serve", args[0])
		parseArgs(t, helpFlags(t, "serve"), args[1:], "Dockerfile CMD")
	})
}
