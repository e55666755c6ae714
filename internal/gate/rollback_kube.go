package gate

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
	// rollbackUserAgent identifies spanwatch in the API server's audit log.
	rollbackUserAgent = "spanwatch-gate"
	// rollbackRequestTimeout bounds each API request; the gate's context
	// bounds the whole rollback.
	rollbackRequestTimeout = 30 * time.Second
	// rollbackServiceAccountNamespace is where a pod finds its namespace.
	rollbackServiceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// NewKubeClient returns a Kubernetes client for --rollback.
//
// With kubeconfig == "" and KUBECONFIG unset it uses the pod's service
// account (in-cluster config); outside a cluster it then falls back to
// ~/.kube/config. Otherwise it loads the kubeconfig file(s) with kubectl's
// rules (--kubeconfig, else the KUBECONFIG list, else ~/.kube/config) and
// uses the current context. No request is made until the first call.
func NewKubeClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := rollbackRESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = rollbackUserAgent
	if cfg.Timeout == 0 {
		cfg.Timeout = rollbackRequestTimeout
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client for %s: %w", cfg.Host, err)
	}
	return client, nil
}

// rollbackUseInCluster is the condition for trying the in-cluster config.
func rollbackUseInCluster(kubeconfig string) bool {
	return kubeconfig == "" && os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == ""
}

func rollbackRESTConfig(kubeconfig string) (*rest.Config, error) {
	if rollbackUseInCluster(kubeconfig) {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			return cfg, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("loading the in-cluster Kubernetes config (service account): %w", err)
		}
		// Not in a pod: try ~/.kube/config like kubectl.
	}
	cfg, err := rollbackClientConfig(kubeconfig).ClientConfig()
	switch {
	case err == nil:
		return cfg, nil
	case clientcmd.IsEmptyConfig(err):
		return nil, fmt.Errorf("no Kubernetes config: not running in a pod (KUBERNETES_SERVICE_HOST unset) and no kubeconfig found at %s; pass --kubeconfig or set KUBECONFIG: %w",
			rollbackKubeconfigPlaces(kubeconfig), err)
	default:
		return nil, fmt.Errorf("loading kubeconfig from %s: %w", rollbackKubeconfigPlaces(kubeconfig), err)
	}
}

// rollbackClientConfig is kubectl's loading: an explicit file, else the
// KUBECONFIG list, else ~/.kube/config; the current context.
func rollbackClientConfig(kubeconfig string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
}

func rollbackKubeconfigPlaces(kubeconfig string) string {
	if kubeconfig != "" {
		return kubeconfig
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		return "KUBECONFIG=" + env
	}
	return clientcmd.RecommendedHomeFile
}

// DefaultRollbackNamespace is the namespace kubectl would use without -n,
// for callers whose --namespace flag is empty: in a pod (same condition as
// NewKubeClient), POD_NAMESPACE or the service account's namespace; with a
// kubeconfig, the current context's namespace; else "default".
func DefaultRollbackNamespace(kubeconfig string) (string, error) {
	if rollbackUseInCluster(kubeconfig) && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
			return ns, nil
		}
		if raw, err := os.ReadFile(rollbackServiceAccountNamespace); err == nil {
			if ns := strings.TrimSpace(string(raw)); ns != "" {
				return ns, nil
			}
		}
		return "default", nil
	}
	ns, _, err := rollbackClientConfig(kubeconfig).Namespace()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return "default", nil
		}
		return "", fmt.Errorf("reading the namespace from kubeconfig %s: %w", rollbackKubeconfigPlaces(kubeconfig), err)
	}
	if ns == "" {
		ns = "default"
	}
	return ns, nil
}
