package config

import (
	"fmt"
	"net"
	"time"
)

// TelemetryConfig shapes what the gateway publishes besides events
// (docs/mqtt.md).
type TelemetryConfig struct {
	// StatsInterval is how often the non-retained stats message is
	// published (default 30s, 5s..10m).
	StatsInterval Duration `yaml:"stats_interval"`
}

// MetricsConfig is the gateway's Prometheus endpoint (/metrics).
type MetricsConfig struct {
	// Listen is its host:port (default 127.0.0.1:9464); "" or "off" turns
	// it off.
	Listen *string `yaml:"listen"`
	// LAN allows Listen off loopback (the figures then cross the network
	// unauthenticated); without it such an address is refused.
	LAN bool `yaml:"lan"`
}

// Telemetry and metrics defaults and limits.
const (
	DefaultStatsInterval = 30 * time.Second
	MinStatsInterval     = 5 * time.Second
	MaxStatsInterval     = 10 * time.Minute
	DefaultMetricsListen = "127.0.0.1:9464"
)

// applyTelemetryDefaults fills the defaults above (called by applyDefaults).
func (c *Config) applyTelemetryDefaults() {
	setDefault(&c.Telemetry.StatsInterval, Duration(DefaultStatsInterval))
	if c.Metrics.Listen == nil {
		l := DefaultMetricsListen
		c.Metrics.Listen = &l
	}
}

// MetricsListen is where /metrics is served, "" when it is off.
func (c *Config) MetricsListen() string {
	if c.Metrics.Listen == nil || *c.Metrics.Listen == "off" {
		return ""
	}
	return *c.Metrics.Listen
}

// validateTelemetry checks telemetry.stats_interval and metrics.
func (c *Config) validateTelemetry() error {
	if v := time.Duration(c.Telemetry.StatsInterval); v < MinStatsInterval || v > MaxStatsInterval {
		return c.fieldError("telemetry.stats_interval", "%v out of %v..%v", v, MinStatsInterval, MaxStatsInterval)
	}
	l := c.MetricsListen()
	if l == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(l)
	if err != nil || port == "" {
		return c.fieldError("metrics.listen", "%q is not host:port (or \"off\")", l)
	}
	if !loopbackHost(host) {
		if !c.Metrics.LAN {
			return c.fieldError("metrics.listen", "%q is off loopback: /metrics has no authentication; keep it on 127.0.0.1 and scrape through a tunnel, or set metrics.lan: true", l)
		}
		c.Warnings = appendOnce(c.Warnings, fmt.Sprintf("metrics.lan: /metrics is served without authentication on %s", l))
	}
	return nil
}

func appendOnce(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}
