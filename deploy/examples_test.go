package deploy

// The integrations under examples/ (Argo Rollouts analysis templates and
// Rollout, the Flagger Canary's webhooks, the gate Job) held to what they
// call: `spanwatch gate`'s flags and exit codes, the request body of
// POST /api/v1/compare and the verdict in its response, and the Services
// of deploy/kubernetes they reach.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/jsonpath"

	"github.com/spanwatch/spanwatch/internal/api"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/regress"
	"github.com/spanwatch/spanwatch/internal/rollback"
)

// Exit codes of `spanwatch gate` (cmd/spanwatch/gate.go, docs/gate.md).
const (
	gateExitUsage   = 3
	gateExitBackend = 4
)

// apiService resolves a URL of the examples to the Service of
// deploy/kubernetes/overlays/example it names (NAME.NAMESPACE[.svc[...]])
// and requires the port to be one of that Service's.
func apiService(t *testing.T, raw string) (*corev1.Service, corev1.ServicePort) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err, raw)
	host, port, err := net.SplitHostPort(u.Host)
	require.NoError(t, err, "%s: an explicit port", raw)
	parts := strings.Split(host, ".")
	require.GreaterOrEqual(t, len(parts), 2, "%s: NAME.NAMESPACE", raw)
	r := render(t, moduleFile(t, "deploy", "kubernetes", "overlays", "example"))
	svc := r.one(t, "Service", parts[0]).obj.(*corev1.Service)
	require.Equal(t, svc.Namespace, parts[1], raw)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	for _, p := range svc.Spec.Ports {
		if int(p.Port) == n {
			return svc, p
		}
	}
	t.Fatalf("%s: Service %s has no port %d", raw, svc.Name, n)
	return nil, corev1.ServicePort{}
}

// compareResponse returns the body POST /api/v1/compare answers with a
// report of the given verdict, through the API's real handler.
func compareResponse(t *testing.T, v regress.Verdict) any {
	t.Helper()
	h := api.CompareHandler(comparerFunc(func(context.Context, io.Reader) (any, error) {
		return &gate.CompareResponse{Report: gate.JSON(&gate.Report{Service: "checkout", Verdict: v})}, nil
	}), nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, api.ComparePath, strings.NewReader(`{}`)))
	require.Equal(t, http.StatusOK, rec.Code)
	var body any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return body
}

type comparerFunc func(context.Context, io.Reader) (any, error)

func (f comparerFunc) Compare(ctx context.Context, body io.Reader) (any, error) { return f(ctx, body) }

// evalJSONPath evaluates a Kubernetes JSONPath template (what Argo Rollouts'
// web provider uses) on a decoded JSON value.
func evalJSONPath(t *testing.T, path string, v any) string {
	t.Helper()
	jp := jsonpath.New("verdict")
	require.NoError(t, jp.Parse(path), path)
	var out bytes.Buffer
	require.NoError(t, jp.Execute(&out, v), path)
	return out.String()
}

// checkCompareBody decodes a request body as POST /api/v1/compare does
// (unknown fields rejected) and plans it as the gate would.
func checkCompareBody(t *testing.T, body, what string) *gate.Request {
	t.Helper()
	var req gate.Request
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&req), "%s: %s", what, body)
	require.False(t, dec.More(), "%s: one JSON object", what)
	_, err := gate.NewPlan(&req, gate.DefaultConfig(), time.Now())
	require.NoError(t, err, "%s: %s", what, body)
	return &req
}

// runGate runs `spanwatch gate` with args against a backend that fails
// every query: with flags and request in order the gate gets as far as its
// first query and exits 4 (backend); a usage error exits 3 at once.
func runGate(t *testing.T, args []string, what string) {
	t.Helper()
	bin := buildBinary(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "backend down", http.StatusInternalServerError)
	}))
	defer backend.Close()
	var run []string
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--url":
			continue
		case "--rollback", "--namespace", "--kubeconfig", "--dry-run":
			continue // needs a cluster; the target is checked with rollback.ParseTarget
		}
		run = append(run, a)
	}
	run = append(run, "--url="+backend.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, run...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "%s: %v\n%s", what, err, out)
	require.Equal(t, gateExitBackend, ee.ExitCode(), "%s: want the backend's exit code (flags and request accepted); a %d is a usage error:\n%s",
		what, gateExitUsage, out)
}

// gateArgs checks a container that runs `spanwatch gate`: the image's
// entrypoint, known flags, a URL that reaches spanwatch's API Service, and
// the whole command accepted by the binary. It returns the flags.
func gateArgs(t *testing.T, c corev1.Container, what string) map[string][]string {
	t.Helper()
	require.Empty(t, c.Command, "%s: the image's entrypoint is the binary", what)
	require.NotEmpty(t, c.Args)
	require.Equal(t, "gate", c.Args[0], what)
	require.Regexp(t, `^ghcr\.io/spanwatch/spanwatch:v[0-9.]+$`, c.Image, what)
	flags := parseArgs(t, helpFlags(t, "gate"), c.Args[1:], what)
	require.Len(t, flags["url"], 1, "%s: --url", what)
	_, port := apiService(t, flags["url"][0])
	require.Equal(t, "web", port.Name, "%s: --url reaches the API port", what)
	runGate(t, c.Args, what)
	return flags
}

// argTemplate matches Argo Rollouts' argument references.
var argTemplate = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}`)

// substitute resolves {{args.NAME}} with the template's defaults and the
// values a Rollout step passes; every argument must have a value.
func substitute(t *testing.T, s string, tmpl *analysisTemplate, given map[string]string) string {
	t.Helper()
	values := map[string]string{}
	for _, a := range tmpl.Spec.Args {
		if a.Value != nil {
			values[a.Name] = *a.Value
		}
	}
	for k, v := range given {
		values[k] = v
	}
	return argTemplate.ReplaceAllStringFunc(s, func(m string) string {
		name := argTemplate.FindStringSubmatch(m)[1]
		v, ok := values[name]
		require.True(t, ok, "%s: argument %s has no value", tmpl.Name, name)
		return v
	})
}

func argoTemplates(t *testing.T) map[string]*analysisTemplate {
	t.Helper()
	out := map[string]*analysisTemplate{}
	for _, f := range []string{"analysistemplate-gate.yaml", "analysistemplate-compare.yaml"} {
		for _, o := range readManifests(t, moduleFile(t, "examples", "argo-rollouts", f)) {
			at, ok := o.obj.(*analysisTemplate)
			require.True(t, ok, "%s: %s", f, o.gvk)
			out[at.Name] = at
		}
	}
	return out
}

func argoRollout(t *testing.T) *rollout {
	t.Helper()
	objs := readManifests(t, moduleFile(t, "examples", "argo-rollouts", "rollout.yaml"))
	require.Len(t, objs, 1)
	ro, ok := objs[0].obj.(*rollout)
	require.True(t, ok)
	return ro
}

// TestArgoRollouts checks both analysis templates as the Rollout uses them.
func TestArgoRollouts(t *testing.T) {
	templates := argoTemplates(t)
	ro := argoRollout(t)
	require.NotNil(t, ro.Spec.Strategy.Canary)

	// Every template is used, with every argument it needs.
	used := map[string]bool{}
	weight := int32(0)
	var paused time.Duration
	for i, step := range ro.Spec.Strategy.Canary.Steps {
		switch {
		case step.SetWeight != nil:
			weight = *step.SetWeight
		case step.Pause != nil:
			d, err := model.ParseDuration(step.Pause.Duration)
			require.NoError(t, err)
			paused = time.Duration(d)
		case step.Analysis != nil:
			given := map[string]string{}
			for _, a := range step.Analysis.Args {
				given[a.Name] = a.Value
			}
			for _, ref := range step.Analysis.Templates {
				tmpl, ok := templates[ref.TemplateName]
				require.True(t, ok, "step %d: no AnalysisTemplate %q", i, ref.TemplateName)
				used[tmpl.Name] = true
				declared := map[string]bool{}
				for _, a := range tmpl.Spec.Args {
					declared[a.Name] = true
					if a.Value == nil {
						require.Contains(t, given, a.Name, "step %d: %s needs argument %s", i, tmpl.Name, a.Name)
					}
				}
				for name := range given {
					require.True(t, declared[name], "step %d: %s has no argument %s", i, tmpl.Name, name)
				}
				t.Run(tmpl.Name, func(t *testing.T) {
					checkAnalysis(t, tmpl, given, weight, paused)
				})
			}
		}
	}
	require.Len(t, used, len(templates), "the Rollout uses every template")

	// The service reports what the gate compares on: its name and version,
	// sent to spanwatch's OTLP/gRPC Service.
	require.Len(t, ro.Spec.Template.Spec.Containers, 1)
	env := map[string]string{}
	for _, e := range ro.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	require.Contains(t, env["OTEL_RESOURCE_ATTRIBUTES"], "service.version=")
	_, port := apiService(t, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
	require.Equal(t, "otlp-grpc", port.Name)
	for _, step := range ro.Spec.Strategy.Canary.Steps {
		if step.Analysis != nil {
			for _, a := range step.Analysis.Args {
				if a.Name == "service" {
					require.Equal(t, env["OTEL_SERVICE_NAME"], a.Value)
				}
			}
		}
	}
}

// checkAnalysis checks one template's metrics with the arguments of the
// step that runs it, at the canary weight and after the pause before it.
func checkAnalysis(t *testing.T, tmpl *analysisTemplate, given map[string]string, weight int32, paused time.Duration) {
	require.Len(t, tmpl.Spec.Metrics, 1)
	m := tmpl.Spec.Metrics[0]
	// One measurement, and no failure tolerated: a verdict is final.
	require.Equal(t, ptrTo(int32(1)), m.Count, "one measurement")
	require.Empty(t, m.Interval)
	require.NotNil(t, m.FailureLimit)
	require.Zero(t, *m.FailureLimit)
	switch {
	case m.Provider.Job != nil:
		require.Nil(t, m.Provider.Web)
		spec := m.Provider.Job.Spec
		require.Equal(t, ptrTo(int32(0)), spec.BackoffLimit, "a failed gate is not retried")
		require.Equal(t, corev1.RestartPolicyNever, spec.Template.Spec.RestartPolicy)
		checkRestricted(t, &spec.Template.Spec, tmpl.Name)
		require.Equal(t, ptrTo(false), spec.Template.Spec.AutomountServiceAccountToken, "no --rollback, no Kubernetes API")
		require.Len(t, spec.Template.Spec.Containers, 1)
		c := spec.Template.Spec.Containers[0]
		for i := range c.Args {
			c.Args[i] = substitute(t, c.Args[i], tmpl, given)
		}
		flags := gateArgs(t, c, tmpl.Name)
		require.NotContains(t, flags, "rollback", "Argo Rollouts aborts the rollout itself")
		// The sample-ratio check expects the step's weight.
		share, err := strconv.ParseFloat(flags["candidate-share"][0], 64)
		require.NoError(t, err)
		require.InDelta(t, float64(weight)/100, share, 1e-9)
		// The Job outlives the gate's wait.
		maxWait, err := model.ParseDuration(flags["max-wait"][0])
		require.NoError(t, err)
		require.NotNil(t, spec.ActiveDeadlineSeconds)
		require.Greater(t, time.Duration(*spec.ActiveDeadlineSeconds)*time.Second, time.Duration(maxWait))

	case m.Provider.Web != nil:
		w := m.Provider.Web
		require.Equal(t, http.MethodPost, w.Method)
		u := substitute(t, w.URL, tmpl, given)
		svc, port := apiService(t, u)
		require.Equal(t, "web", port.Name, "%s: the API port of Service %s", u, svc.Name)
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		require.Equal(t, api.ComparePath, parsed.Path)
		require.Contains(t, w.Headers, struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}{"Content-Type", "application/json"})
		req := checkCompareBody(t, substitute(t, w.Body, tmpl, given), tmpl.Name)
		require.Equal(t, given["service"], req.Service)
		window, err := model.ParseDuration(req.Window)
		require.NoError(t, err)
		require.LessOrEqual(t, time.Duration(window), paused, "the window lies within the pause before the look")
		// The conditions read the verdict; neither holds for inconclusive.
		require.Equal(t, `result == "`+regress.Pass.String()+`"`, m.SuccessCondition)
		require.Equal(t, `result == "`+regress.Regression.String()+`"`, m.FailureCondition)
		require.Equal(t, ptrTo(int32(0)), m.InconclusiveLimit)
		for _, v := range []regress.Verdict{regress.Pass, regress.Regression, regress.Inconclusive} {
			require.Equal(t, v.String(), evalJSONPath(t, w.JSONPath, compareResponse(t, v)))
		}

	default:
		t.Fatalf("%s: a job or web provider", tmpl.Name)
	}
}

// curlData and curlURL pick a request body and URL out of the webhook
// commands; jqTest their verdict test.
var (
	curlData = regexp.MustCompile(`--data '([^']*)'`)
	curlURL  = regexp.MustCompile(`\s(https?://\S+)`)
	jqTest   = regexp.MustCompile(`\| jq -e '(\.[a-z.]+) == "([a-z]+)"'$`)
)

// TestFlaggerWebhooks checks the Canary's webhooks: load-tester bash tasks
// whose curl posts a valid compare request to spanwatch's API Service and
// whose jq exits 0 exactly on the verdict the hook type acts on.
func TestFlaggerWebhooks(t *testing.T) {
	objs := readManifests(t, moduleFile(t, "examples", "flagger", "canary.yaml"))
	require.Len(t, objs, 1)
	c, ok := objs[0].obj.(*canary)
	require.True(t, ok)
	require.Equal(t, "Deployment", c.Spec.TargetRef.Kind)
	acts := map[string]regress.Verdict{
		"rollback":          regress.Regression, // success rolls the canary back
		"confirm-promotion": regress.Pass,       // success lets it be promoted
	}
	seen := map[string]bool{}
	for _, h := range c.Spec.Analysis.Webhooks {
		t.Run(h.Name, func(t *testing.T) {
			want, ok := acts[h.Type]
			require.True(t, ok, "hook type %s", h.Type)
			seen[h.Type] = true
			require.Equal(t, "bash", h.Metadata["type"], "the load tester's blocking task type")
			cmd := h.Metadata["cmd"]
			require.True(t, strings.HasPrefix(cmd, "curl -sS -f -X POST "), cmd)

			data := curlData.FindStringSubmatch(cmd)
			require.NotNil(t, data, cmd)
			req := checkCompareBody(t, data[1], h.Name)
			require.Equal(t, c.Spec.TargetRef.Name, req.Service)

			u := curlURL.FindStringSubmatch(cmd)
			require.NotNil(t, u, cmd)
			_, port := apiService(t, u[1])
			require.Equal(t, "web", port.Name)
			parsed, err := url.Parse(u[1])
			require.NoError(t, err)
			require.Equal(t, api.ComparePath, parsed.Path)

			jq := jqTest.FindStringSubmatch(cmd)
			require.NotNil(t, jq, cmd)
			require.Equal(t, want.String(), jq[2])
			// jq's path, as a JSONPath, on the real response envelope.
			for _, v := range []regress.Verdict{regress.Pass, regress.Regression, regress.Inconclusive} {
				require.Equal(t, v.String(), evalJSONPath(t, "{$"+jq[1]+"}", compareResponse(t, v)))
			}

			timeout, err := time.ParseDuration(h.Timeout)
			require.NoError(t, err)
			require.LessOrEqual(t, timeout, time.Minute, "one look answers in seconds; a hook that hangs holds the analysis")
		})
	}
	require.Len(t, seen, len(acts))
}

// TestGateJob checks the rollback Job: its flags, its target, and that it
// runs as the ServiceAccount the gate-rbac Role is bound to, in the
// namespace of that binding and of the Deployment.
func TestGateJob(t *testing.T) {
	objs := readManifests(t, moduleFile(t, "examples", "kubernetes", "gate-job.yaml"))
	require.Len(t, objs, 1)
	job, ok := objs[0].obj.(*batchv1.Job)
	require.True(t, ok)
	spec := &job.Spec.Template.Spec
	require.Equal(t, ptrTo(int32(0)), job.Spec.BackoffLimit, "a regression is rolled back once, not retried")
	require.Equal(t, corev1.RestartPolicyNever, spec.RestartPolicy)
	checkRestricted(t, spec, "gate Job")

	rbac := render(t, moduleFile(t, "deploy", "kubernetes", "overlays", "example", "gate"))
	sa := rbac.one(t, "ServiceAccount", spec.ServiceAccountName)
	require.Equal(t, sa.meta().GetNamespace(), job.Namespace)

	require.Len(t, spec.Containers, 1)
	flags := gateArgs(t, spec.Containers[0], "gate Job")
	require.Len(t, flags["rollback"], 1)
	require.Len(t, flags["namespace"], 1)
	target, err := rollback.ParseTarget(flags["rollback"][0], flags["namespace"][0])
	require.NoError(t, err)
	require.Equal(t, job.Namespace, target.Namespace)
	maxWait, err := model.ParseDuration(flags["max-wait"][0])
	require.NoError(t, err)
	require.NotNil(t, job.Spec.ActiveDeadlineSeconds)
	require.Greater(t, time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second, time.Duration(maxWait))
}

// TestGateExitCodes keeps the exit codes the examples document equal to
// the binary's: a bad flag is a usage error (3), --help succeeds.
func TestGateExitCodes(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "gate", "--service=x", "--no-such-flag").CombinedOutput()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "%v\n%s", err, out)
	require.Equal(t, gateExitUsage, ee.ExitCode())
	require.NoError(t, exec.Command(bin, "gate", "--help").Run())
}
