package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	prules "github.com/prometheus/prometheus/rules"
)

// WebhookMessage is Alertmanager's webhook payload (version 4), so that
// receivers written for Alertmanager work unchanged.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookMessage.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// webhookSender posts alert batches to URLs from a bounded queue.
type webhookSender struct {
	urls     []string
	external string
	extLbls  map[string]string
	client   *http.Client
	logger   *slog.Logger
	queue    chan WebhookMessage
	done     chan struct{}
	sent     *prometheus.CounterVec
	failed   *prometheus.CounterVec
	dropped  prometheus.Counter
}

func newWebhookSender(urls []string, externalURL string, ext map[string]string, logger *slog.Logger, reg prometheus.Registerer) (*webhookSender, error) {
	for _, u := range urls {
		if _, err := parseURL(u); err != nil {
			return nil, fmt.Errorf("webhook URL %w", err)
		}
	}
	w := &webhookSender{
		urls: urls, external: externalURL, extLbls: ext, logger: logger,
		client: &http.Client{Timeout: 10 * time.Second},
		queue:  make(chan WebhookMessage, 1000),
		done:   make(chan struct{}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanwatch_webhook_notifications_sent_total", Help: "Webhook notifications delivered, by URL.",
		}, []string{"url"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanwatch_webhook_notifications_failed_total", Help: "Webhook notifications that failed, by URL.",
		}, []string{"url"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanwatch_webhook_notifications_dropped_total", Help: "Webhook notifications dropped because the queue was full.",
		}),
	}
	if reg != nil {
		reg.MustRegister(w.sent, w.failed, w.dropped)
	}
	return w, nil
}

// send queues the alerts of one rule evaluation as one message; each
// links to generator (the rule's expression in the UI).
func (w *webhookSender) send(generator string, alerts []*prules.Alert) {
	if len(alerts) == 0 {
		return
	}
	msg := WebhookMessage{Version: "4", Receiver: "spanwatch", ExternalURL: w.external, Status: "resolved",
		GroupLabels: map[string]string{}}
	var common labels.Labels
	for i, a := range alerts {
		lb := labels.NewBuilder(a.Labels)
		for k, v := range w.extLbls {
			if lb.Get(k) == "" {
				lb.Set(k, v)
			}
		}
		ls := lb.Labels()
		// As Alertmanager's webhook shows them: a firing alert has no end
		// yet (the zero time), a resolved one ends when it resolved.
		status, endsAt := "firing", time.Time{}
		if !a.ResolvedAt.IsZero() {
			status, endsAt = "resolved", a.ResolvedAt
		} else {
			msg.Status = "firing"
		}
		lm := ls.Map()
		msg.Alerts = append(msg.Alerts, WebhookAlert{
			Status: status, Labels: lm, Annotations: a.Annotations.Map(), StartsAt: a.FiredAt, EndsAt: endsAt,
			// The link and the fingerprint Prometheus and Alertmanager
			// give the same alert, so receivers can match both routes.
			GeneratorURL: generator,
			Fingerprint:  labelSetOf(lm).Fingerprint().String(),
		})
		if i == 0 {
			common = ls
		} else {
			common = intersect(common, ls)
		}
	}
	msg.CommonLabels = common.Map()
	msg.CommonAnnotations = commonAnnotations(alerts)
	if name := common.Get(labels.AlertName); name != "" {
		msg.GroupLabels[labels.AlertName] = name
	}
	keys := make([]string, 0, len(msg.GroupLabels))
	for k := range msg.GroupLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	msg.GroupKey = fmt.Sprintf("{}:{alertname=%q}", msg.GroupLabels[labels.AlertName])
	select {
	case w.queue <- msg:
	default:
		w.dropped.Inc()
	}
}

func intersect(a, b labels.Labels) labels.Labels {
	lb := labels.NewScratchBuilder(a.Len())
	a.Range(func(l labels.Label) {
		if b.Get(l.Name) == l.Value {
			lb.Add(l.Name, l.Value)
		}
	})
	return lb.Labels()
}

func commonAnnotations(alerts []*prules.Alert) map[string]string {
	out := alerts[0].Annotations.Map()
	for _, a := range alerts[1:] {
		for k, v := range out {
			if a.Annotations.Get(k) != v {
				delete(out, k)
			}
		}
	}
	return out
}

func (w *webhookSender) start() {
	go func() {
		defer close(w.done)
		for msg := range w.queue {
			body, err := json.Marshal(msg)
			if err != nil {
				continue
			}
			for _, u := range w.urls {
				w.post(u, body)
			}
		}
	}()
}

func (w *webhookSender) post(u string, body []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "spanwatch")
	resp, err := w.client.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
	}
	if err != nil {
		w.failed.WithLabelValues(u).Inc()
		w.logger.Warn("webhook notification failed", "url", u, "err", err)
		return
	}
	w.sent.WithLabelValues(u).Inc()
}

func (w *webhookSender) stop() {
	close(w.queue)
	<-w.done
}

// labelSetOf converts a label map to Alertmanager's label set type.
func labelSetOf(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}
