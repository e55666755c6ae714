// Package uitest holds spanwatch's browser tests: the web UI, built into
// internal/web/assets/dist, loaded in a real headless Chromium driven with
// chromedp against an in-process spanwatch fed with simulated traffic. It
// has tests only.
package uitest
