package rollback

// Connecting to the Kubernetes API for --rollback: in-cluster service account
// or a kubeconfig, as kubectl would.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// userAgent identifies spanwatch in the API server's audit log.
	userAgent = "spanwatch-gate"
	// requestTimeout bounds each API request; the gate's context
	// bounds the whole rollback.
	requestTimeout = 30 * time.Second
	// serviceAccountNamespace is where a pod finds its namespace.
	serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// NewKubeClient returns a Kubernetes client for --rollback.
//
// With kubeconfig == "" and KUBECONFIG unset it uses the pod's service
// account (in-cluster config); outside a cluster it then falls back to
// ~/.kube/config. Otherwise it loads the kubeconfig file(s) with kubectl's
// rules (--kubeconfig, else the KUBECONFIG list, else ~/.kube/config) and
// uses the current context. No request is made until the first call.
func NewKubeClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = userAgent
	if cfg.Timeout == 0 {
		cfg.Timeout = requestTimeout
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client for %s: %w", cfg.Host, err)
	}
	return client, nil
}

// useInCluster is the condition for trying the in-cluster config.
func useInCluster(kubeconfig string) bool {
	return kubeconfig == "" && os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == ""
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if useInCluster(kubeconfig) {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			return cfg, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("loading the in-cluster Kubernetes config (service account): %w", err)
		}
		// Not in a pod: try ~/.kube/config like kubectl.
	}
	cfg, err := clientConfig(kubeconfig).ClientConfig()
	switch {
	case err == nil:
		return cfg, nil
	case clientcmd.IsEmptyConfig(err):
		return nil, fmt.Errorf("no Kubernetes config: not running in a pod (KUBERNETES_SERVICE_HOST unset) and no kubeconfig found at %s; pass --kubeconfig or set KUBECONFIG: %w",
			kubeconfigPlaces(kubeconfig), err)
	default:
		return nil, fmt.Errorf("loading kubeconfig from %s: %w", kubeconfigPlaces(kubeconfig), err)
	}
}

// clientConfig is kubectl's loading: an explicit file, else the
// KUBECONFIG list, else ~/.kube/config; the current context.
func clientConfig(kubeconfig string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
}

func kubeconfigPlaces(kubeconfig string) string {
	if kubeconfig != "" {
		return kubeconfig
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		return "KUBECONFIG=" + env
	}
	return clientcmd.RecommendedHomeFile
}

// DefaultNamespace is the namespace kubectl would use without -n,
// for callers whose --namespace flag is empty: in a pod (same condition as
// NewKubeClient), POD_NAMESPACE or the service account's namespace; with a
// kubeconfig, the current context's namespace; else "default".
func DefaultNamespace(kubeconfig string) (string, error) {
	if useInCluster(kubeconfig) && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
			return ns, nil
		}
		if raw, err := os.ReadFile(serviceAccountNamespace); err == nil {
			if ns := strings.TrimSpace(string(raw)); ns != "" {
				return ns, nil
			}
		}
		return "default", nil
	}
	ns, _, err := clientConfig(kubeconfig).Namespace()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return "default", nil
		}
		return "", fmt.Errorf("reading the namespace from kubeconfig %s: %w", kubeconfigPlaces(kubeconfig), err)
	}
	if ns == "" {
		ns = "default"
	}
	return ns, nil
}
