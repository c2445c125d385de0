package camsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/ipv4"

	"velo/onvif"
)

const (
	nsWSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	nsWSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsDN  = "http://www.onvif.org/ver10/network/wsdl"
)

type probeMsg struct {
	Header struct {
		MessageID string `xml:"MessageID"`
		Action    string `xml:"Action"`
	} `xml:"Header"`
	Body struct {
		Probe *struct {
			Types  string `xml:"Types"`
			Scopes string `xml:"Scopes"`
		} `xml:"Probe"`
	} `xml:"Body"`
}

// responder answers WS-Discovery probes for all cameras: a shared multicast
// listener (optional) and one unicast socket per camera bound to the
// camera's own address, so replies come from the camera's IP.
type responder struct {
	cfg     DiscoveryConfig
	cams    []*Camera
	unicast map[*Camera]*net.UDPConn
	mcast   net.PacketConn
	logf    func(string, ...any)
	wg      sync.WaitGroup
}

func newResponder(cfg DiscoveryConfig, cams []*Camera, logf func(string, ...any)) *responder {
	return &responder{cfg: cfg, cams: cams, unicast: map[*Camera]*net.UDPConn{}, logf: logf}
}

func (r *responder) start(ctx context.Context) error {
	if !*r.cfg.Unicast && !r.cfg.Multicast {
		return nil
	}
	lc := net.ListenConfig{Control: onvif.ReuseAddrControl}
	for _, c := range r.cams {
		pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("%s:%d", c.cfg.Address, r.cfg.UnicastPort))
		if err != nil {
			r.close()
			return fmt.Errorf("camsim %s: discovery socket: %w", c.cfg.ID, err)
		}
		uc := pc.(*net.UDPConn)
		// Our own Hello/Bye and multicast replies leave on loopback only.
		if lo := loopbackIface(); lo != nil {
			_ = ipv4.NewPacketConn(uc).SetMulticastInterface(lo)
		}
		r.unicast[c] = uc
	}
	if r.cfg.Multicast {
		gaddr, err := net.ResolveUDPAddr("udp4", r.cfg.Group)
		if err != nil {
			r.close()
			return fmt.Errorf("camsim: discovery group: %w", err)
		}
		pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", gaddr.Port))
		if err != nil {
			r.close()
			return fmt.Errorf("camsim: multicast listen: %w", err)
		}
		p4 := ipv4.NewPacketConn(pc)
		if err := p4.JoinGroup(loopbackIface(), &net.UDPAddr{IP: gaddr.IP}); err != nil {
			// Fall back to the routing table's choice (a namespace whose
			// 239/8 route points at lo).
			if err2 := p4.JoinGroup(nil, &net.UDPAddr{IP: gaddr.IP}); err2 != nil {
				pc.Close()
				r.close()
				return fmt.Errorf("camsim: join %s: %v / %v", r.cfg.Group, err, err2)
			}
		}
		r.mcast = pc
	}
	for c, uc := range r.unicast {
		if *r.cfg.Unicast || r.cfg.Multicast {
			r.wg.Add(1)
			go func(c *Camera, uc *net.UDPConn) {
				defer r.wg.Done()
				r.serve(uc, func(from *net.UDPAddr, p *probeMsg) {
					if matchTypes(p) {
						r.reply(c, from, p.Header.MessageID)
					}
				})
			}(c, uc)
		}
	}
	if r.mcast != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.serve(r.mcast, func(from *net.UDPAddr, p *probeMsg) {
				if !matchTypes(p) {
					return
				}
				for _, c := range r.cams {
					r.reply(c, from, p.Header.MessageID)
				}
			})
		}()
		for _, c := range r.cams {
			r.announce(c, "Hello")
		}
	}
	return nil
}

func loopbackIface() *net.Interface {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for i := range ifs {
		if ifs[i].Flags&net.FlagLoopback != 0 {
			return &ifs[i]
		}
	}
	return nil
}

func matchTypes(p *probeMsg) bool {
	if p.Body.Probe == nil {
		return false
	}
	types := strings.Fields(p.Body.Probe.Types)
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		l := t
		if i := strings.LastIndexByte(t, ':'); i >= 0 {
			l = t[i+1:]
		}
		if l == "NetworkVideoTransmitter" || l == "Device" {
			return true
		}
	}
	return false
}

func (r *responder) serve(pc net.PacketConn, fn func(*net.UDPAddr, *probeMsg)) {
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		var p probeMsg
		if err := xml.Unmarshal(buf[:n], &p); err != nil {
			continue
		}
		if ua, ok := from.(*net.UDPAddr); ok {
			fn(ua, &p)
		}
	}
}

func (r *responder) matchXML(c *Camera) string {
	xaddr := "http://" + c.xaddrHost() + "/onvif/device_service"
	return `<d:EndpointReference><a:Address>` + c.cfg.Endpoint + `</a:Address></d:EndpointReference>` +
		`<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>` +
		`<d:Scopes>` + esc(strings.Join(c.scopes(), " ")) + `</d:Scopes>` +
		`<d:XAddrs>` + esc(xaddr) + `</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>`
}

func wsdEnvelope(action, relates, body string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="` + nsSoap + `" xmlns:a="` + nsWSA +
		`" xmlns:d="` + nsWSD + `" xmlns:dn="` + nsDN + `" xmlns:tds="` + nsDevice + `"><s:Header>`)
	b.WriteString(`<a:MessageID>urn:uuid:` + onvif.NewUUID() + `</a:MessageID>`)
	if relates != "" {
		b.WriteString(`<a:RelatesTo>` + esc(relates) + `</a:RelatesTo>`)
	}
	b.WriteString(`<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>`)
	b.WriteString(`<a:Action>` + nsWSD + `/` + action + `</a:Action>`)
	b.WriteString(`<d:AppSequence InstanceId="1" MessageNumber="1"></d:AppSequence>`)
	b.WriteString(`</s:Header><s:Body>` + body + `</s:Body></s:Envelope>`)
	return b.Bytes()
}

func (r *responder) reply(c *Camera, to *net.UDPAddr, relates string) {
	uc := r.unicast[c]
	if uc == nil {
		return
	}
	msg := wsdEnvelope("ProbeMatches", relates, `<d:ProbeMatches><d:ProbeMatch>`+r.matchXML(c)+`</d:ProbeMatch></d:ProbeMatches>`)
	if _, err := uc.WriteToUDP(msg, to); err != nil {
		r.logf("camsim %s: probe reply to %s: %v", c.cfg.ID, to, err)
	}
}

func (r *responder) announce(c *Camera, kind string) {
	uc := r.unicast[c]
	if uc == nil || !r.cfg.Multicast {
		return
	}
	gaddr, err := net.ResolveUDPAddr("udp4", r.cfg.Group)
	if err != nil {
		return
	}
	body := `<d:` + kind + `>` + r.matchXML(c) + `</d:` + kind + `>`
	if kind == "Bye" {
		body = `<d:Bye><d:EndpointReference><a:Address>` + c.cfg.Endpoint + `</a:Address></d:EndpointReference></d:Bye>`
	}
	if _, err := uc.WriteToUDP(wsdEnvelope(kind, "", body), gaddr); err != nil {
		r.logf("camsim %s: %s: %v", c.cfg.ID, kind, err)
	}
}

func (r *responder) close() {
	if r.mcast != nil {
		for _, c := range r.cams {
			r.announce(c, "Bye")
		}
		r.mcast.Close()
	}
	for _, uc := range r.unicast {
		uc.Close()
	}
	r.wg.Wait()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
