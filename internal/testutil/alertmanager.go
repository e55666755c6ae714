package testutil

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spanwatch/spanwatch/internal/rules"
)

// StartAlertmanager runs a real Alertmanager (the Debian
// prometheus-alertmanager package) on loopback with the given configuration
// file content, clustering off, waits until it is ready, stops it when the
// test ends and returns its base URL.
func StartAlertmanager(t testing.TB, config string) string {
	t.Helper()
	bin := Binary(t, "prometheus-alertmanager")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	logs := &SyncBuffer{}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager did not become ready: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// AlertmanagerToWebhook is an Alertmanager configuration that routes every
// alert to the webhook at url, grouped by alertname and service_name, after
// 1 s of group_wait and group_interval, with resolved notifications.
func AlertmanagerToWebhook(url string) string {
	return fmt.Sprintf(`
route:
  receiver: hook
  group_by: [alertname, service_name]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %q
        send_resolved: true
`, url)
}

// WebhookMessage is a notification in Alertmanager's webhook format, as
// Alertmanager's webhook receiver and spanwatch's --alert.webhook.url post
// it.
type WebhookMessage = rules.WebhookMessage

// WebhookAlert is one alert of a WebhookMessage.
type WebhookAlert = rules.WebhookAlert

// WebhookRecorder is an HTTP endpoint, closed when the test ends, that
// records the webhook messages posted to it; a body that does not decode
// is answered 400 and kept in Errors.
type WebhookRecorder struct {
	*httptest.Server
	mu     sync.Mutex
	msgs   []WebhookMessage
	errors []error
}

// StartWebhookRecorder starts a WebhookRecorder.
func StartWebhookRecorder(t testing.TB) *WebhookRecorder {
	t.Helper()
	r := &WebhookRecorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m WebhookMessage
		err := json.NewDecoder(req.Body).Decode(&m)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.errors = append(r.errors, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.msgs = append(r.msgs, m)
	}))
	t.Cleanup(r.Close)
	return r
}

// Messages returns the messages received so far.
func (r *WebhookRecorder) Messages() []WebhookMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]WebhookMessage(nil), r.msgs...)
}

// Errors returns the bodies that did not decode, as errors.
func (r *WebhookRecorder) Errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errors...)
}

// Find returns the first alert received with status (firing or resolved)
// and alertname, with the message that carried it, or nil.
func (r *WebhookRecorder) Find(status, alertname string) (*WebhookAlert, *WebhookMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.msgs {
		for j := range r.msgs[i].Alerts {
			a := &r.msgs[i].Alerts[j]
			if a.Status == status && a.Labels["alertname"] == alertname {
				m := r.msgs[i]
				al := *a
				return &al, &m
			}
		}
	}
	return nil, nil
}
