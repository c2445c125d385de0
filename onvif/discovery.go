package onvif

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// WS-Discovery constants.
const (
	DiscoveryGroup   = "239.255.255.250:3702"
	DiscoveryPort    = 3702
	nsWSD            = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	nsWSA            = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsDN             = "http://www.onvif.org/ver10/network/wsdl"
	wsdTo            = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
	actionProbe      = nsWSD + "/Probe"
	maxDatagram      = 64 << 10
	defaultWindow    = 3 * time.Second
	defaultMaxHosts  = 4096
	unicastSendPause = 200 * time.Microsecond
)

// Device is a camera found by WS-Discovery.
type Device struct {
	// Endpoint is EndpointReference/Address (usually urn:uuid:…); the
	// dedupe key.
	Endpoint string   `json:"endpoint"`
	XAddrs   []string `json:"xaddrs"`
	Types    []string `json:"types,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	// Name, Hardware and Location come from onvif:// scopes.
	Name     string `json:"name,omitempty"`
	Hardware string `json:"hardware,omitempty"`
	Location string `json:"location,omitempty"`
	// From is the source address of the (first) reply.
	From            string `json:"from"`
	MetadataVersion string `json:"metadata_version,omitempty"`
}

// DiscoverOptions configures Discover. Zero value: multicast on every
// multicast-capable interface plus the routing table's default, 3 s window.
type DiscoverOptions struct {
	// Interfaces restricts multicast to these interface names (e.g. "eth0",
	// "lo"). Empty: all up multicast-capable interfaces, plus one probe
	// through the routing table.
	Interfaces []string
	// NoMulticast disables multicast probes (unicast only).
	NoMulticast bool
	// Unicast lists hosts ("192.0.2.7", "cam.local") or CIDRs
	// ("192.0.2.0/28") to probe directly on port 3702 (for VLANs that
	// multicast does not cross).
	Unicast []string
	// Window is how long to collect replies. Default 3 s.
	Window time.Duration
	// Group overrides the multicast group address (tests).
	Group string
	// UnicastPort overrides port 3702 for unicast probes (tests).
	UnicastPort int
	// MaxHosts bounds CIDR expansion. Default 4096.
	MaxHosts int
}

// Discover sends WS-Discovery probes and returns the devices that answered
// within the window, deduplicated by endpoint and sorted by first XAddr.
// Devices that will need credentials are returned like any other.
func Discover(ctx context.Context, opt DiscoverOptions) ([]Device, error) {
	opt.applyDefaults()
	group, err := net.ResolveUDPAddr("udp4", opt.Group)
	if err != nil {
		return nil, fmt.Errorf("onvif: discovery group %q: %w", opt.Group, err)
	}
	targets, err := expandHosts(opt.Unicast, opt.MaxHosts)
	if err != nil {
		return nil, err
	}
	msgID := "urn:uuid:" + newUUID()
	p := &prober{probe: probeMessage(msgID)}
	defer p.close()

	ctx, cancel := context.WithTimeout(ctx, opt.Window)
	defer cancel()
	if !opt.NoMulticast {
		if err := p.multicast(opt.Interfaces, group); err != nil {
			return nil, err
		}
	}
	if err := p.unicast(ctx, targets, opt.UnicastPort); err != nil {
		return nil, err
	}
	if err := p.sentAny(); err != nil {
		return nil, err
	}
	col := &collector{byEP: map[string]*Device{}, msgID: msgID}
	p.collect(ctx, col)
	return col.result(), nil
}

func (opt *DiscoverOptions) applyDefaults() {
	if opt.Window <= 0 {
		opt.Window = defaultWindow
	}
	if opt.Group == "" {
		opt.Group = DiscoveryGroup
	}
	if opt.UnicastPort == 0 {
		opt.UnicastPort = DiscoveryPort
	}
	if opt.MaxHosts <= 0 {
		opt.MaxHosts = defaultMaxHosts
	}
}

// prober sends one Discover call's probes, each from its own socket, and
// reads the replies on those sockets. A send that fails is remembered, not
// fatal: Discover fails only when no probe went out.
type prober struct {
	probe    []byte
	conns    []*net.UDPConn
	sendErrs []string
	sent     int
}

func (p *prober) open() (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, fmt.Errorf("onvif: discovery socket: %w", err)
	}
	p.conns = append(p.conns, c)
	return c, nil
}

func (p *prober) close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// send sends the probe to dst and reports whether it went out; a failure
// is recorded under what.
func (p *prober) send(c *net.UDPConn, dst *net.UDPAddr, what string) bool {
	if _, err := c.WriteToUDP(p.probe, dst); err != nil {
		p.sendErrs = append(p.sendErrs, fmt.Sprintf("%s: %v", what, err))
		return false
	}
	p.sent++
	return true
}

// multicast probes the group on each named interface (all multicast-capable
// ones when none is named, plus one probe through the routing table).
func (p *prober) multicast(names []string, group *net.UDPAddr) error {
	ifaces, err := multicastInterfaces(names)
	if err != nil {
		return err
	}
	for _, ifi := range ifaces {
		c, err := p.open()
		if err != nil {
			return err
		}
		pc := ipv4.NewPacketConn(c)
		if err := pc.SetMulticastInterface(ifi); err != nil {
			p.sendErrs = append(p.sendErrs, fmt.Sprintf("%s: %v", ifi.Name, err))
			continue
		}
		_ = pc.SetMulticastLoopback(true)
		p.send(c, group, ifi.Name)
	}
	if len(names) == 0 {
		// One probe through the routing table: covers hosts whose only
		// multicast route is on an interface without the MULTICAST flag
		// (e.g. loopback in a test namespace).
		c, err := p.open()
		if err != nil {
			return err
		}
		p.send(c, group, "default route")
	}
	return nil
}

// unicast probes each target directly, paced, until ctx is done.
func (p *prober) unicast(ctx context.Context, targets []netip.Addr, port int) error {
	if len(targets) == 0 {
		return nil
	}
	c, err := p.open()
	if err != nil {
		return err
	}
	for _, ip := range targets {
		if ctx.Err() != nil {
			break
		}
		if p.send(c, &net.UDPAddr{IP: ip.AsSlice(), Port: port}, ip.String()) {
			time.Sleep(unicastSendPause) // pace a CIDR sweep; bounded by MaxHosts
		}
	}
	return nil
}

// sentAny fails when no probe went out.
func (p *prober) sentAny() error {
	switch {
	case p.sent > 0:
		return nil
	case len(p.sendErrs) == 0:
		return errors.New("onvif: discovery: no interface to probe on")
	default:
		return fmt.Errorf("onvif: discovery: no probe sent: %s", strings.Join(p.sendErrs, "; "))
	}
}

// collect reads replies on every socket until ctx is done; it returns when
// every reader has.
func (p *prober) collect(ctx context.Context, col *collector) {
	var wg sync.WaitGroup
	for _, c := range p.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			col.read(ctx, c)
		}()
	}
	<-ctx.Done()
	for _, c := range p.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	wg.Wait()
}

type collector struct {
	mu    sync.Mutex
	byEP  map[string]*Device
	msgID string
}

func (col *collector) read(ctx context.Context, c *net.UDPConn) {
	buf := make([]byte, maxDatagram)
	for ctx.Err() == nil {
		dl, _ := ctx.Deadline()
		_ = c.SetReadDeadline(dl)
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		devs, relates, err := ParseDiscoveryMessage(buf[:n])
		if err != nil || (relates != "" && relates != col.msgID) {
			continue
		}
		col.add(devs, from.IP.String())
	}
}

func (col *collector) add(devs []Device, from string) {
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, d := range devs {
		if d.Endpoint == "" {
			continue
		}
		if old, ok := col.byEP[d.Endpoint]; ok {
			old.XAddrs = mergeStrings(old.XAddrs, d.XAddrs)
			continue
		}
		d := d
		d.From = from
		col.byEP[d.Endpoint] = &d
	}
}

func (col *collector) result() []Device {
	col.mu.Lock()
	defer col.mu.Unlock()
	out := make([]Device, 0, len(col.byEP))
	for _, d := range col.byEP {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := firstOr(out[i].XAddrs, out[i].Endpoint), firstOr(out[j].XAddrs, out[j].Endpoint)
		if a != b {
			return a < b
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	return out
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func mergeStrings(a, b []string) []string {
	for _, x := range b {
		found := false
		for _, y := range a {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			a = append(a, x)
		}
	}
	return a
}

func multicastInterfaces(names []string) ([]*net.Interface, error) {
	if len(names) > 0 {
		var out []*net.Interface
		for _, n := range names {
			ifi, err := net.InterfaceByName(n)
			if err != nil {
				return nil, fmt.Errorf("onvif: discovery interface %q: %w", n, err)
			}
			if ifi.Flags&net.FlagUp == 0 {
				return nil, fmt.Errorf("onvif: discovery interface %q is down", n)
			}
			out = append(out, ifi)
		}
		return out, nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("onvif: list interfaces: %w", err)
	}
	var out []*net.Interface
	for i := range all {
		f := all[i].Flags
		if f&net.FlagUp != 0 && f&net.FlagMulticast != 0 && f&net.FlagLoopback == 0 {
			out = append(out, &all[i])
		}
	}
	return out, nil
}

// expandHosts turns hosts and CIDRs into IPv4 addresses (network and
// broadcast addresses of CIDRs excluded for prefixes shorter than /31).
func expandHosts(specs []string, max int) ([]netip.Addr, error) {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) error {
		if seen[a] {
			return nil
		}
		if len(out) >= max {
			return fmt.Errorf("onvif: unicast discovery: more than %d hosts", max)
		}
		seen[a] = true
		out = append(out, a)
		return nil
	}
	for _, s := range specs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil || !p.Addr().Is4() {
				return nil, fmt.Errorf("onvif: unicast discovery: bad IPv4 CIDR %q", s)
			}
			p = p.Masked()
			size := 1 << (32 - p.Bits())
			if size > max {
				return nil, fmt.Errorf("onvif: unicast discovery: %s has %d hosts, more than %d", s, size, max)
			}
			a := p.Addr()
			for i := 0; i < size; i++ {
				if p.Bits() < 31 && (i == 0 || i == size-1) {
					a = a.Next()
					continue
				}
				if err := add(a); err != nil {
					return nil, err
				}
				a = a.Next()
			}
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			if !a.Is4() {
				return nil, fmt.Errorf("onvif: unicast discovery: %q is not IPv4", s)
			}
			if err := add(a); err != nil {
				return nil, err
			}
			continue
		}
		ips, err := net.LookupIP(s)
		if err != nil {
			return nil, fmt.Errorf("onvif: unicast discovery: resolve %q: %w", s, err)
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip.To4()); ok && ip.To4() != nil {
				if err := add(a); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

func probeMessage(msgID string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<s:Envelope xmlns:s="` + NSSoap + `" xmlns:a="` + nsWSA + `" xmlns:d="` + nsWSD + `" xmlns:dn="` + nsDN + `" xmlns:tds="` + NSDevice + `">`)
	b.WriteString(`<s:Header><a:Action s:mustUnderstand="1">` + actionProbe + `</a:Action>`)
	b.WriteString(`<a:MessageID>` + msgID + `</a:MessageID>`)
	b.WriteString(`<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>`)
	b.WriteString(`<a:To s:mustUnderstand="1">` + wsdTo + `</a:To></s:Header>`)
	b.WriteString(`<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>`)
	return b.Bytes()
}

type wsdMatch struct {
	EndpointReference struct {
		Address string `xml:"Address"`
	} `xml:"EndpointReference"`
	Types           string `xml:"Types"`
	Scopes          string `xml:"Scopes"`
	XAddrs          string `xml:"XAddrs"`
	MetadataVersion string `xml:"MetadataVersion"`
}

type wsdEnvelope struct {
	Header struct {
		Action    string `xml:"Action"`
		RelatesTo string `xml:"RelatesTo"`
	} `xml:"Header"`
	Body struct {
		ProbeMatches *struct {
			ProbeMatch []wsdMatch `xml:"ProbeMatch"`
		} `xml:"ProbeMatches"`
		Hello *wsdMatch `xml:"Hello"`
		Bye   *wsdMatch `xml:"Bye"`
		Probe *struct {
			Types string `xml:"Types"`
		} `xml:"Probe"`
	} `xml:"Body"`
}

// AnnouncementKind tells Hello from Bye.
type AnnouncementKind string

// Announcement kinds.
const (
	Hello AnnouncementKind = "hello"
	Bye   AnnouncementKind = "bye"
	Match AnnouncementKind = "match"
)

// ParseDiscoveryMessage parses a WS-Discovery datagram (ProbeMatches, Hello or
// Bye) defensively: bad XAddrs are dropped, never fatal. It returns the
// devices and the RelatesTo header ("" when absent).
func ParseDiscoveryMessage(data []byte) ([]Device, string, error) {
	devs, _, relates, err := parseDiscovery(data)
	return devs, relates, err
}

func parseDiscovery(data []byte) ([]Device, AnnouncementKind, string, error) {
	if len(data) > maxDatagram {
		return nil, "", "", fmt.Errorf("%w: datagram too large", ErrMalformed)
	}
	if err := checkShape(data); err != nil {
		return nil, "", "", err
	}
	var env wsdEnvelope
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	if err := dec.Decode(&env); err != nil {
		return nil, "", "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	relates := strings.TrimSpace(env.Header.RelatesTo)
	var kind AnnouncementKind
	var ms []wsdMatch
	switch {
	case env.Body.ProbeMatches != nil:
		kind, ms = Match, env.Body.ProbeMatches.ProbeMatch
	case env.Body.Hello != nil:
		kind, ms = Hello, []wsdMatch{*env.Body.Hello}
	case env.Body.Bye != nil:
		kind, ms = Bye, []wsdMatch{*env.Body.Bye}
	default:
		return nil, "", relates, fmt.Errorf("%w: not a ProbeMatches, Hello or Bye", ErrMalformed)
	}
	var out []Device
	for _, m := range ms {
		d := Device{
			Endpoint:        strings.TrimSpace(m.EndpointReference.Address),
			Types:           strings.Fields(m.Types),
			Scopes:          strings.Fields(m.Scopes),
			MetadataVersion: strings.TrimSpace(m.MetadataVersion),
		}
		if d.Endpoint == "" {
			continue
		}
		for _, x := range strings.Fields(m.XAddrs) {
			u, err := url.Parse(x)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
				continue
			}
			u.User = nil
			d.XAddrs = append(d.XAddrs, u.String())
		}
		for _, s := range d.Scopes {
			const pre = "onvif://www.onvif.org/"
			if !strings.HasPrefix(strings.ToLower(s), pre) {
				continue
			}
			rest := s[len(pre):]
			key, val, ok := strings.Cut(rest, "/")
			if !ok {
				continue
			}
			if v, err := url.PathUnescape(val); err == nil {
				val = v
			}
			switch strings.ToLower(key) {
			case "name":
				d.Name = val
			case "hardware":
				d.Hardware = val
			case "location":
				if d.Location == "" {
					d.Location = val
				}
			}
		}
		out = append(out, d)
	}
	return out, kind, relates, nil
}

// ListenOptions configures Listen.
type ListenOptions struct {
	// Interfaces to join the group on; empty = the system default.
	Interfaces []string
	// Group overrides the multicast group (tests).
	Group string
	// Ready, when set, is called once the group is joined.
	Ready func()
}

// AnnouncementEvent is a Hello or Bye heard by Listen.
type AnnouncementEvent struct {
	Kind   AnnouncementKind
	Device Device
}

// Listen joins the WS-Discovery group and calls fn for every Hello and Bye
// until ctx is done. It returns nil on cancellation.
func Listen(ctx context.Context, opt ListenOptions, fn func(AnnouncementEvent)) error {
	if opt.Group == "" {
		opt.Group = DiscoveryGroup
	}
	gaddr, err := net.ResolveUDPAddr("udp4", opt.Group)
	if err != nil {
		return fmt.Errorf("onvif: listen group %q: %w", opt.Group, err)
	}
	lc := net.ListenConfig{Control: reuseAddr}
	pconn, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", gaddr.Port))
	if err != nil {
		return fmt.Errorf("onvif: listen %s: %w", opt.Group, err)
	}
	defer pconn.Close()
	pc := ipv4.NewPacketConn(pconn)
	joined := 0
	if len(opt.Interfaces) == 0 {
		if err := pc.JoinGroup(nil, &net.UDPAddr{IP: gaddr.IP}); err != nil {
			return fmt.Errorf("onvif: join %s: %w", opt.Group, err)
		}
		joined++
	}
	for _, n := range opt.Interfaces {
		ifi, err := net.InterfaceByName(n)
		if err != nil {
			return fmt.Errorf("onvif: listen interface %q: %w", n, err)
		}
		if err := pc.JoinGroup(ifi, &net.UDPAddr{IP: gaddr.IP}); err != nil {
			return fmt.Errorf("onvif: join %s on %s: %w", opt.Group, n, err)
		}
		joined++
	}
	stop := context.AfterFunc(ctx, func() { _ = pconn.SetReadDeadline(time.Now()) })
	defer stop()
	if opt.Ready != nil {
		opt.Ready()
	}
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := pconn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("onvif: listen: %w", err)
		}
		devs, kind, _, err := parseDiscovery(buf[:n])
		if err != nil || (kind != Hello && kind != Bye) {
			continue
		}
		for _, d := range devs {
			if ua, ok := from.(*net.UDPAddr); ok {
				d.From = ua.IP.String()
			}
			fn(AnnouncementEvent{Kind: kind, Device: d})
		}
	}
}
