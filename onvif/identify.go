package onvif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// AllowList is the set of hosts credentials may be sent to. A spoofed
// ProbeMatch pointing at another host must not harvest passwords.
type AllowList struct {
	prefixes []netip.Prefix
}

// ParseAllowList parses IPs and CIDRs ("192.0.2.10", "192.0.2.0/24").
func ParseAllowList(specs []string) (AllowList, error) {
	var a AllowList
	for _, s := range specs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return a, fmt.Errorf("onvif: allow-list entry %q: %w", s, err)
			}
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return a, fmt.Errorf("onvif: allow-list entry %q: not an IP or CIDR", s)
		}
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return a, nil
}

// Empty reports whether the list allows nothing.
func (a AllowList) Empty() bool { return len(a.prefixes) == 0 }

// Allows reports whether credentials may go to the host of rawURL (an IP
// literal; names are refused: DNS can be spoofed as easily as a ProbeMatch).
func (a AllowList) Allows(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Credentials for a camera. String never prints the password.
type Credentials struct {
	Username string
	Password string
}

// String implements fmt.Stringer without the password.
func (c Credentials) String() string { return "user=" + c.Username + " password=REDACTED" }

// Identity is what Identify learned about a discovered device.
type Identity struct {
	Device
	XAddr     string      `json:"xaddr"`
	Info      *DeviceInfo `json:"info,omitempty"`
	NeedsAuth bool        `json:"needs_auth"`
	// XAddrRewritten is set when the device advertised another IP than
	// the one it answered from and XAddr was rewritten to the source IP.
	XAddrRewritten bool `json:"xaddr_rewritten,omitempty"`
	// CredentialsWithheld is set when the device needs auth but its host is
	// not on the allow-list, so no credentials were sent.
	CredentialsWithheld bool   `json:"credentials_withheld,omitempty"`
	Error               string `json:"error,omitempty"`
}

// Identify reads a discovered device's identity: first without credentials;
// if the device needs them and its XAddr host is on allow, with creds.
func Identify(ctx context.Context, d Device, creds *Credentials, allow AllowList) Identity {
	id := Identity{Device: d}
	for _, x := range d.XAddrs {
		if u, err := url.Parse(x); err == nil && u.Scheme == "http" {
			id.XAddr = x
			break
		}
	}
	if id.XAddr == "" && len(d.XAddrs) > 0 {
		id.XAddr = d.XAddrs[0]
	}
	if id.XAddr == "" {
		id.Error = "no usable XAddr"
		return id
	}
	id.XAddr, id.XAddrRewritten = matchSource(id.XAddr, d.From)
	anon, err := NewClient(Config{XAddr: id.XAddr})
	if err != nil {
		id.Error = err.Error()
		return id
	}
	defer anon.CloseIdleConnections()
	info, err := anon.GetDeviceInformationAnon(ctx)
	if err == nil {
		id.Info = &info
		return id
	}
	if !errors.Is(err, ErrUnauthorized) {
		id.Error = err.Error()
		return id
	}
	id.NeedsAuth = true
	if creds == nil || creds.Username == "" {
		return id
	}
	if !allow.Allows(id.XAddr) {
		id.CredentialsWithheld = true
		return id
	}
	c, err := NewClient(Config{XAddr: id.XAddr, Username: creds.Username, Password: creds.Password})
	if err != nil {
		id.Error = err.Error()
		return id
	}
	defer c.CloseIdleConnections()
	if err := c.SyncTime(ctx); err != nil {
		id.Error = err.Error()
		return id
	}
	info, err = c.GetDeviceInformation(ctx)
	if err != nil {
		id.Error = err.Error()
		return id
	}
	id.Info = &info
	return id
}

// matchSource rewrites the host of xaddr to from (the ProbeMatch's source
// IP) when the device advertised a different IP literal, keeping the port.
// Quirk: cheap OEM firmware advertises a stale or NATed IP in XAddrs
// (firmware-notes/generic-oem.md).
func matchSource(xaddr, from string) (string, bool) {
	if from == "" {
		return xaddr, false
	}
	u, err := url.Parse(xaddr)
	if err != nil {
		return xaddr, false
	}
	h := u.Hostname()
	if _, err := netip.ParseAddr(h); err != nil || h == from {
		return xaddr, false
	}
	if p := u.Port(); p != "" {
		u.Host = net.JoinHostPort(from, p)
	} else {
		u.Host = from
	}
	return u.String(), true
}

// SourceXAddrs returns the device's XAddrs with an advertised IP literal
// replaced by the ProbeMatch's source IP, port kept (the cheap-OEM quirk
// of firmware-notes/generic-oem.md): where the device really answers.
func (d Device) SourceXAddrs() []string {
	out := make([]string, 0, len(d.XAddrs))
	for _, x := range d.XAddrs {
		r, _ := matchSource(x, d.From)
		out = append(out, r)
	}
	return out
}
