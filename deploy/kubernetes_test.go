package deploy

// The spanwatch server as deploy/kubernetes renders it, base and example
// overlay alike, held to the binary: its flags, the listen addresses and
// storage path it defaults to, the health endpoints its web server serves,
// the configuration file it accepts, the image's user and the shutdown it
// performs.

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/memlimit"
	"github.com/spanwatch/spanwatch/internal/testutil"
	"github.com/spanwatch/spanwatch/internal/web"
)

// serverDirs are the kustomizations that deploy the server.
var serverDirs = []string{"base", "overlays/example"}

// listenFlags maps the serve flags that set a listen address to the
// default in the code and the container port name the manifests give it.
func listenFlags() map[string]struct{ def, port string } {
	d := app.DefaultOptions()
	return map[string]struct{ def, port string }{
		"otlp.grpc.listen-address": {d.Ingest.GRPCAddress, "otlp-grpc"},
		"otlp.http.listen-address": {d.Ingest.HTTPAddress, "otlp-http"},
		"metrics.listen-address":   {d.MetricsAddress, "span-metrics"},
		"web.listen-address":       {d.WebAddress, "web"},
	}
}

// server is the rendered StatefulSet and its spanwatch container.
type server struct {
	r    *rendered
	sts  *appsv1.StatefulSet
	c    *corev1.Container
	args map[string]string // serve flags as given
}

func loadServer(t *testing.T, dir string) *server {
	t.Helper()
	r := render(t, moduleFile(t, "deploy", "kubernetes", dir))
	sts := r.one(t, "StatefulSet", "spanwatch").obj.(*appsv1.StatefulSet)
	require.Len(t, sts.Spec.Template.Spec.Containers, 1)
	c := &sts.Spec.Template.Spec.Containers[0]
	require.NotEmpty(t, c.Args)
	require.Equal(t, "serve", c.Args[0], "the container runs `spanwatch serve` (the image's entrypoint is the binary)")
	require.Empty(t, c.Command, "the image's entrypoint stays")
	s := &server{r: r, sts: sts, c: c, args: map[string]string{}}
	for _, a := range c.Args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		require.True(t, ok && strings.HasPrefix(a, "--"), "%s: %q: want --name=value", dir, a)
		require.NotContains(t, s.args, name, "%s: --%s twice", dir, name)
		s.args[name] = value
	}
	return s
}

// flag returns the value the server runs with: the argument, else the
// default.
func (s *server) flag(name, def string) string {
	if v, ok := s.args[name]; ok {
		return v
	}
	return def
}

// containerPort returns the container port named name.
func (s *server) containerPort(t *testing.T, name string) int32 {
	t.Helper()
	for _, p := range s.c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("no container port %q", name)
	return 0
}

// resolve returns the container port a probe or Service port refers to.
func (s *server) resolve(t *testing.T, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.String {
		return s.containerPort(t, p.StrVal)
	}
	return p.IntVal
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	n, err := strconv.ParseInt(port, 10, 32)
	require.NoError(t, err, addr)
	return int32(n)
}

func TestServerFlagsExist(t *testing.T) {
	serve := helpFlags(t, "serve")
	for _, dir := range serverDirs {
		s := loadServer(t, dir)
		parseArgs(t, serve, s.c.Args[1:], dir+": spanwatch serve")
	}
	// The defaults the other tests take from the code are the ones the
	// binary shows.
	for flag, l := range listenFlags() {
		require.Equal(t, l.def, serve.defaults[flag], "--%s", flag)
	}
	require.Equal(t, app.DefaultOptions().Storage.Path, serve.defaults["storage.path"])
}

func TestServerPortsAndServices(t *testing.T) {
	for _, dir := range serverDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadServer(t, dir)
			// One container port per listener, at the port it listens on.
			want := map[string]int32{}
			for flag, l := range listenFlags() {
				want[l.port] = portOf(t, s.flag(flag, l.def))
			}
			got := map[string]int32{}
			for _, p := range s.c.Ports {
				require.Equal(t, corev1.ProtocolTCP, p.Protocol)
				got[p.Name] = p.ContainerPort
			}
			require.Equal(t, want, got)

			// Every Service selects the pods; its ports reach the container
			// port of the same name, at the same number, so that clients use
			// spanwatch's usual ports.
			podLabels := labels.Set(s.sts.Spec.Template.Labels)
			exposed := map[string]string{} // container port name → Service
			for _, o := range s.r.all("Service") {
				svc := o.obj.(*corev1.Service)
				require.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels), "Service %s selects the spanwatch pods", svc.Name)
				for _, p := range svc.Spec.Ports {
					require.Equal(t, intstr.FromString(p.Name), p.TargetPort, "Service %s port %s: targets the container port by name", svc.Name, p.Name)
					require.Equal(t, s.resolve(t, p.TargetPort), p.Port, "Service %s port %s", svc.Name, p.Name)
					require.NotContains(t, exposed, p.Name, "container port %s is exposed by two Services", p.Name)
					exposed[p.Name] = svc.Name
				}
			}
			require.Equal(t, map[string]string{
				"otlp-grpc": "spanwatch-otlp", "otlp-http": "spanwatch-otlp",
				"web": "spanwatch", "span-metrics": "spanwatch-metrics",
			}, exposed)

			headless := s.r.one(t, "Service", s.sts.Spec.ServiceName).obj.(*corev1.Service)
			require.Equal(t, corev1.ClusterIPNone, headless.Spec.ClusterIP)
		})
	}
}

// TestServerProbes requires the probes on the web port, on paths the web
// server's health handlers answer, with the semantics they need: liveness
// and startup on /-/healthy (answered as long as the process serves),
// readiness on /-/ready (503 until spanwatch is ready, and while it shuts
// down).
func TestServerProbes(t *testing.T) {
	ready := web.NewReadiness("starting")
	mux := http.NewServeMux()
	web.HealthHandlers(mux, ready)
	status := func(p string) int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		return rec.Code
	}
	for _, dir := range serverDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadServer(t, dir)
			web := listenFlags()["web.listen-address"]
			webPort := portOf(t, s.flag("web.listen-address", web.def))
			for name, tc := range map[string]struct {
				probe *corev1.Probe
				path  string
			}{
				"liveness":  {s.c.LivenessProbe, "/-/healthy"},
				"readiness": {s.c.ReadinessProbe, "/-/ready"},
				"startup":   {s.c.StartupProbe, "/-/healthy"},
			} {
				require.NotNil(t, tc.probe, name)
				require.NotNil(t, tc.probe.HTTPGet, name)
				require.Equal(t, tc.path, tc.probe.HTTPGet.Path, name)
				require.Equal(t, webPort, s.resolve(t, tc.probe.HTTPGet.Port), "%s probe on the web port", name)
				require.Empty(t, tc.probe.HTTPGet.Scheme, name)
			}
			// The startup probe outlasts a long WAL replay; the liveness
			// probe then takes over.
			sp := s.c.StartupProbe
			require.GreaterOrEqual(t, time.Duration(sp.PeriodSeconds*sp.FailureThreshold)*time.Second, 5*time.Minute)
			// Shutdown's steps are bounded by the shutdown timeout each;
			// give at least two of them.
			grace := s.sts.Spec.Template.Spec.TerminationGracePeriodSeconds
			require.NotNil(t, grace)
			require.GreaterOrEqual(t, time.Duration(*grace)*time.Second, 2*app.DefaultOptions().ShutdownTimeout)
		})
	}
	require.Equal(t, http.StatusOK, status("/-/healthy"))
	require.Equal(t, http.StatusServiceUnavailable, status("/-/ready"))
	ready.SetReady()
	require.Equal(t, http.StatusOK, status("/-/ready"))
	ready.SetNotReady("shutting down")
	require.Equal(t, http.StatusServiceUnavailable, status("/-/ready"))
	require.Equal(t, http.StatusOK, status("/-/healthy"))
}

// TestServerStorage requires --storage.path on the PersistentVolumeClaim and
// every other mount read-only, which a read-only root filesystem needs.
func TestServerStorage(t *testing.T) {
	for _, dir := range serverDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadServer(t, dir)
			storage := s.flag("storage.path", app.DefaultOptions().Storage.Path)
			require.True(t, path.IsAbs(storage), "--storage.path %q: absolute, not relative to the image's working directory", storage)
			require.Len(t, s.sts.Spec.VolumeClaimTemplates, 1)
			pvc := s.sts.Spec.VolumeClaimTemplates[0]
			require.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, pvc.Spec.AccessModes)
			size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
			require.False(t, size.IsZero(), "the claim requests storage")
			dataMounts := 0
			for _, m := range s.c.VolumeMounts {
				if m.Name == pvc.Name {
					require.Equal(t, storage, m.MountPath)
					require.False(t, m.ReadOnly)
					dataMounts++
					continue
				}
				require.True(t, m.ReadOnly, "mount %s: only the data volume is writable", m.Name)
			}
			require.Equal(t, 1, dataMounts)
			require.NotEqual(t, "none", s.flag("storage.mode", app.StorageTSDB), "a StatefulSet with a claim is for the embedded TSDB")
		})
	}
}

// TestServerConfig requires --config.file to be a key of the mounted
// ConfigMap and to load with spanwatch's own strict parser, its
// spanmetrics section being the recipe's connector block.
func TestServerConfig(t *testing.T) {
	for _, dir := range serverDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadServer(t, dir)
			file, ok := s.args["config.file"]
			require.True(t, ok, "the server runs with --config.file")
			var cm *corev1.ConfigMap
			for _, m := range s.c.VolumeMounts {
				if m.MountPath != path.Dir(file) {
					continue
				}
				for _, v := range s.sts.Spec.Template.Spec.Volumes {
					if v.Name == m.Name && v.ConfigMap != nil {
						cm = s.r.one(t, "ConfigMap", v.ConfigMap.Name).obj.(*corev1.ConfigMap)
					}
				}
			}
			require.NotNil(t, cm, "%s is in a mounted ConfigMap", file)
			data, ok := cm.Data[path.Base(file)]
			require.True(t, ok, "ConfigMap %s has key %s", cm.Name, path.Base(file))
			_, err := config.Parse([]byte(data), file)
			require.NoError(t, err)

			recipe, err := os.ReadFile(testutil.RecipeFile(t, "collector.yaml"))
			require.NoError(t, err)
			var want struct {
				Connectors struct {
					SpanMetrics any `yaml:"spanmetrics"`
				} `yaml:"connectors"`
			}
			require.NoError(t, yaml.Unmarshal(recipe, &want))
			var got struct {
				SpanMetrics any `yaml:"spanmetrics"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(data), &got))
			require.NotNil(t, want.Connectors.SpanMetrics)
			require.Equal(t, want.Connectors.SpanMetrics, got.SpanMetrics, "the spanmetrics section is the recipe's connector block")
		})
	}
}

// imageUser is the numeric user of the Dockerfile's final stage.
func imageUser(t *testing.T) int64 {
	t.Helper()
	df := parseDockerfile(t)
	user := df.in(df.last, "USER")
	require.Len(t, user, 1)
	uid, _, _ := strings.Cut(user[0], ":")
	n, err := strconv.ParseInt(uid, 10, 64)
	require.NoError(t, err)
	return n
}

// checkRestricted holds a pod to the Kubernetes "restricted" Pod Security
// Standard and to a read-only root filesystem with all capabilities
// dropped, running as the image's user.
func checkRestricted(t *testing.T, spec *corev1.PodSpec, what string) {
	t.Helper()
	uid := imageUser(t)
	psc := spec.SecurityContext
	require.NotNil(t, psc, what)
	require.Equal(t, ptrTo(true), psc.RunAsNonRoot, what)
	if psc.RunAsUser != nil {
		require.Equal(t, uid, *psc.RunAsUser, "%s: the image's user", what)
	}
	require.NotNil(t, psc.SeccompProfile, what)
	require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type, what)
	require.False(t, spec.HostNetwork || spec.HostPID || spec.HostIPC, what)
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		sc := c.SecurityContext
		require.NotNil(t, sc, "%s: container %s", what, c.Name)
		require.Equal(t, ptrTo(false), sc.AllowPrivilegeEscalation, "%s: container %s", what, c.Name)
		require.Equal(t, ptrTo(true), sc.ReadOnlyRootFilesystem, "%s: container %s", what, c.Name)
		require.NotNil(t, sc.Capabilities, "%s: container %s", what, c.Name)
		require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s: container %s", what, c.Name)
		require.Empty(t, sc.Capabilities.Add, "%s: container %s", what, c.Name)
		require.Nil(t, sc.Privileged, "%s: container %s", what, c.Name)
		if sc.RunAsUser != nil {
			require.Equal(t, uid, *sc.RunAsUser, "%s: container %s", what, c.Name)
		}
		if sc.SeccompProfile != nil {
			require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type, "%s: container %s", what, c.Name)
		}
		_, hasLimit := c.Resources.Limits[corev1.ResourceMemory]
		require.True(t, hasLimit, "%s: container %s has a memory limit", what, c.Name)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestServerSecurity(t *testing.T) {
	for _, dir := range serverDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadServer(t, dir)
			spec := &s.sts.Spec.Template.Spec
			checkRestricted(t, spec, dir)
			require.NotNil(t, spec.SecurityContext.FSGroup, "the data volume is writable by the image's group")
			// The server makes no Kubernetes API calls: no token, and its
			// ServiceAccount is bound to nothing.
			require.Equal(t, ptrTo(false), spec.AutomountServiceAccountToken)
			sa := s.r.one(t, "ServiceAccount", spec.ServiceAccountName).obj.(*corev1.ServiceAccount)
			require.Equal(t, ptrTo(false), sa.AutomountServiceAccountToken)
			require.Empty(t, s.r.all("Role"))
			require.Empty(t, s.r.all("RoleBinding"))
			require.Empty(t, s.r.all("ClusterRole"))
			require.Empty(t, s.r.all("ClusterRoleBinding"))
		})
	}
}

// TestServerMemory requires a memory limit equal to the request, and
// spanwatch's memory limit (from which GOMEMLIMIT and the soft limit of
// the memory limiter derive) taken from it: either --memory.limit is left
// at auto (the cgroup limit, which is limits.memory) or it equals
// limits.memory. A GOMEMLIMIT variable would override the derived runtime
// limit and go stale when the limit changes: none is set.
func TestServerMemory(t *testing.T) {
	limits := map[string]int64{}
	for _, dir := range serverDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadServer(t, dir)
			limit, ok := s.c.Resources.Limits[corev1.ResourceMemory]
			require.True(t, ok, "a memory limit")
			require.Equal(t, limit.String(), ptrTo(s.c.Resources.Requests[corev1.ResourceMemory]).String(),
				"memory request = limit: the pod is not evicted for using what it was given")
			for _, e := range s.c.Env {
				require.NotEqual(t, "GOMEMLIMIT", e.Name, "spanwatch sets the runtime limit from --memory.limit")
			}
			flag := memlimit.Auto
			for _, a := range s.c.Args {
				if v, ok := strings.CutPrefix(a, "--memory.limit="); ok {
					flag = v
				}
			}
			if flag != memlimit.Auto {
				n, src, err := memlimit.Resolve(flag)
				require.NoError(t, err)
				require.Equal(t, memlimit.SourceFlag, src)
				require.EqualValues(t, limit.Value(), n, "--memory.limit=%s for a %s limit", flag, limit.String())
			}
			limits[dir] = limit.Value()
		})
	}
	require.NotEqual(t, limits["base"], limits["overlays/example"], "the overlay changes the limit (and with it spanwatch's)")
}

func TestServerDisruptionBudget(t *testing.T) {
	for _, dir := range serverDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadServer(t, dir)
			pdbs := s.r.all("PodDisruptionBudget")
			require.Len(t, pdbs, 1)
			pdb := pdbs[0].obj.(*policyv1.PodDisruptionBudget)
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			require.NoError(t, err)
			require.True(t, sel.Matches(labels.Set(s.sts.Spec.Template.Labels)))
			// A drain can always go through: at least one pod may go.
			replicas := int32(1)
			if s.sts.Spec.Replicas != nil {
				replicas = *s.sts.Spec.Replicas
			}
			switch {
			case pdb.Spec.MaxUnavailable != nil:
				n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(replicas), true)
				require.NoError(t, err)
				require.GreaterOrEqual(t, n, 1)
			case pdb.Spec.MinAvailable != nil:
				n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(replicas), true)
				require.NoError(t, err)
				require.Less(t, n, int(replicas))
			default:
				t.Fatal("the budget sets maxUnavailable or minAvailable")
			}
		})
	}
}

// TestServiceMonitor requires every endpoint of the example's
// ServiceMonitor to name a port of exactly one selected Service (so that
// no pod is scraped twice) and the span-metrics one to scrape at least once
// per flush interval.
func TestServiceMonitor(t *testing.T) {
	s := loadServer(t, "overlays/example")
	sms := s.r.all("ServiceMonitor")
	require.Len(t, sms, 1)
	sm := sms[0].obj.(*serviceMonitor)
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	require.NoError(t, err)
	require.Equal(t, s.sts.Namespace, sm.Namespace, "in spanwatch's namespace (the default namespaceSelector)")
	ports := map[string][]string{}
	for _, o := range s.r.all("Service") {
		svc := o.obj.(*corev1.Service)
		if !sel.Matches(labels.Set(svc.Labels)) {
			continue
		}
		for _, p := range svc.Spec.Ports {
			ports[p.Name] = append(ports[p.Name], svc.Name)
		}
	}
	flush := config.Default().SpanMetrics.MetricsFlushInterval
	scraped := map[string]bool{}
	for _, ep := range sm.Spec.Endpoints {
		require.Len(t, ports[ep.Port], 1, "endpoint port %s: one selected Service has it", ep.Port)
		require.Equal(t, "/metrics", ep.Path)
		iv, err := time.ParseDuration(ep.Interval)
		require.NoError(t, err)
		if ep.Port == "span-metrics" {
			require.LessOrEqual(t, iv, flush, "span metrics change once per flush interval")
		}
		scraped[ep.Port] = true
	}
	require.Equal(t, map[string]bool{"span-metrics": true, "web": true}, scraped)
}

// TestGateRBACOverlay requires the example's gate permissions to bind the
// gate's ServiceAccount to its Role in the gated namespace.
func TestGateRBACOverlay(t *testing.T) {
	r := render(t, moduleFile(t, "deploy", "kubernetes", "overlays", "example", "gate"))
	sa := r.one(t, "ServiceAccount", "spanwatch-gate").obj.(*corev1.ServiceAccount)
	role := r.one(t, "Role", "spanwatch-gate-rollback").obj.(*rbacv1.Role)
	rb := r.one(t, "RoleBinding", "spanwatch-gate-rollback").obj.(*rbacv1.RoleBinding)
	require.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}, rb.RoleRef)
	require.Equal(t, []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}}, rb.Subjects)
	require.Equal(t, role.Namespace, rb.Namespace)
	require.NotEmpty(t, role.Namespace)
	// The rules themselves are held to the rollback's calls by
	// internal/rollback's TestRBACRolesGrantExactlyTheRollbackCalls.
	require.Empty(t, r.all("ClusterRole"))
	require.Empty(t, r.all("ClusterRoleBinding"))
}
