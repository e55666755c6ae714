package deploy

// Custom resources the examples use, with only the fields they set. There
// are no Go types for them in go.mod; these structs follow the projects' API
// types (argoproj/argo-rollouts pkg/apis/rollouts/v1alpha1, fluxcd/flagger
// pkg/apis/flagger/v1beta1, prometheus-operator monitoring/v1) field for
// field, and a strict decode fails on anything else, including a misspelt
// field name.

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ServiceMonitor (monitoring.coreos.com/v1).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// AnalysisTemplate (argoproj.io/v1alpha1).
type analysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Args    []analysisArg    `json:"args,omitempty"`
		Metrics []analysisMetric `json:"metrics"`
	} `json:"spec"`
}

type analysisArg struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
}

type analysisMetric struct {
	Name              string `json:"name"`
	Interval          string `json:"interval,omitempty"`
	Count             *int32 `json:"count,omitempty"`
	SuccessCondition  string `json:"successCondition,omitempty"`
	FailureCondition  string `json:"failureCondition,omitempty"`
	FailureLimit      *int32 `json:"failureLimit,omitempty"`
	InconclusiveLimit *int32 `json:"inconclusiveLimit,omitempty"`
	Provider          struct {
		Job *struct {
			Metadata metav1.ObjectMeta `json:"metadata,omitempty"`
			Spec     batchv1.JobSpec   `json:"spec"`
		} `json:"job,omitempty"`
		Web *struct {
			Method  string `json:"method,omitempty"`
			URL     string `json:"url"`
			Headers []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"headers,omitempty"`
			Body           string `json:"body,omitempty"`
			TimeoutSeconds int64  `json:"timeoutSeconds,omitempty"`
			JSONPath       string `json:"jsonPath,omitempty"`
		} `json:"web,omitempty"`
	} `json:"provider"`
}

// Rollout (argoproj.io/v1alpha1), canary strategy.
type rollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Replicas             *int32                 `json:"replicas,omitempty"`
		RevisionHistoryLimit *int32                 `json:"revisionHistoryLimit,omitempty"`
		Selector             *metav1.LabelSelector  `json:"selector"`
		Template             corev1.PodTemplateSpec `json:"template"`
		Strategy             struct {
			Canary *struct {
				Steps []rolloutStep `json:"steps,omitempty"`
			} `json:"canary,omitempty"`
		} `json:"strategy"`
	} `json:"spec"`
}

type rolloutStep struct {
	SetWeight *int32 `json:"setWeight,omitempty"`
	Pause     *struct {
		Duration string `json:"duration,omitempty"`
	} `json:"pause,omitempty"`
	Analysis *struct {
		Templates []struct {
			TemplateName string `json:"templateName"`
		} `json:"templates"`
		Args []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"args,omitempty"`
	} `json:"analysis,omitempty"`
}

// Canary (flagger.app/v1beta1).
type canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"targetRef"`
		Service struct {
			Port       int32 `json:"port"`
			TargetPort int32 `json:"targetPort,omitempty"`
		} `json:"service"`
		Analysis struct {
			Interval   string `json:"interval"`
			Threshold  int    `json:"threshold"`
			MaxWeight  int    `json:"maxWeight,omitempty"`
			StepWeight int    `json:"stepWeight,omitempty"`
			Webhooks   []struct {
				Name     string            `json:"name"`
				Type     string            `json:"type"`
				URL      string            `json:"url"`
				Timeout  string            `json:"timeout,omitempty"`
				Metadata map[string]string `json:"metadata,omitempty"`
			} `json:"webhooks"`
		} `json:"analysis"`
	} `json:"spec"`
}

// DeepCopyObject makes the structs runtime.Objects; the tests never copy.
func (s *serviceMonitor) DeepCopyObject() runtime.Object   { return s }
func (a *analysisTemplate) DeepCopyObject() runtime.Object { return a }
func (r *rollout) DeepCopyObject() runtime.Object          { return r }
func (c *canary) DeepCopyObject() runtime.Object           { return c }
