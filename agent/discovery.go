package agent

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"velo/agent/attempts"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/event"
	"velo/onvif"
)

// discoveryLoop runs WS-Discovery at start and every interval.
func (a *Agent) discoveryLoop(ctx context.Context) {
	reported := map[string]bool{}
	for {
		d := a.cfg.Load().Discovery
		if d.Enabled {
			if err := a.discoverOnce(ctx, reported); err != nil && ctx.Err() == nil {
				a.log.Warn().Err(err).Msg("discovery failed")
			}
		}
		wait := time.Duration(d.Interval)
		if wait <= 0 {
			wait = 10 * time.Minute
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// maxReported bounds the endpoints remembered as reported: a hostile
// peer may name a new device in every reply.
const maxReported = 1024

// discoverOnce probes and classifies what answered: a device whose
// endpoint matches a camera's match.endpoint, or one of whose XAddrs (as
// advertised, or with the reply's source IP) has a configured camera's
// host:port, is that camera (its identity is then
// checked by serial when the worker connects); anything else is reported
// once per agent run as camera_unconfigured (once per round past
// maxReported devices). Replies are unauthenticated and easy to spoof:
// what they name is bounded and escaped, and only a source's first new
// device of a burst is reported on its own, the rest in one summary.
func (a *Agent) discoverOnce(ctx context.Context, reported map[string]bool) error {
	cfg := a.cfg.Load()
	d := cfg.Discovery
	devs, err := onvif.Discover(ctx, onvif.DiscoverOptions{Interfaces: d.Interfaces, NoMulticast: !d.Multicast,
		Unicast: d.Unicast, Window: time.Duration(d.Window), UnicastPort: d.UnicastPort})
	if err != nil {
		return err
	}
	for _, dev := range devs {
		if id := matchDevice(cfg, dev); id != "" {
			continue
		}
		ep := audit.Clean(dev.Endpoint, audit.MaxFieldLen)
		if reported[ep] {
			continue
		}
		if len(reported) < maxReported {
			reported[ep] = true
		}
		at := attempts.Attempt{Kind: string(event.CameraUnconfigured), Source: attempts.Source(dev.From), Name: ep}
		if a.bursts().Observe(a.opts.Clock.Now(), at) {
			a.emit(event.Event{Kind: event.CameraUnconfigured, Detail: unconfiguredDetail(dev, ep)})
		}
	}
	return nil
}

// unconfiguredDetail describes a discovered device with what its reply
// claims, each value bounded and escaped (at most 4 XAddrs).
func unconfiguredDetail(dev onvif.Device, endpoint string) string {
	var xaddrs []string
	for i, x := range dev.XAddrs {
		if i == 4 {
			xaddrs = append(xaddrs, fmt.Sprintf("(+%d more)", len(dev.XAddrs)-i))
			break
		}
		xaddrs = append(xaddrs, audit.Clean(config.RedactURL(x), audit.MaxFieldLen))
	}
	return fmt.Sprintf("endpoint %s at %s (name \"%s\", hardware \"%s\"): not in the config, not streamed",
		endpoint, strings.Join(xaddrs, " "), audit.Clean(dev.Name, 64), audit.Clean(dev.Hardware, 64))
}

// matchDevice returns the configured camera a discovered device is, or "".
func matchDevice(cfg *config.Config, dev onvif.Device) string {
	for _, cam := range cfg.Cameras {
		if cam.Match.Endpoint != "" && cam.Match.Endpoint == dev.Endpoint {
			return cam.ID
		}
		cu, err := url.Parse(cam.XAddr)
		if err != nil {
			continue
		}
		// The source-rewritten XAddrs too: cheap OEM firmware advertises a
		// stale or NATed IP (firmware-notes/generic-oem.md).
		for _, x := range append(dev.XAddrs, dev.SourceXAddrs()...) {
			if du, err := url.Parse(x); err == nil && hostPort(du) == hostPort(cu) {
				return cam.ID
			}
		}
	}
	return ""
}

func hostPort(u *url.URL) string {
	p := u.Port()
	if p == "" {
		p = map[string]string{"https": "443"}[u.Scheme]
		if p == "" {
			p = "80"
		}
	}
	return u.Hostname() + ":" + p
}
