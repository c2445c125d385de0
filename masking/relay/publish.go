package relay

import (
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"velo/masking/codec"
)

// Publisher feeds an H.264 or H.265 stream into the relay from this
// process (no RTSP client, so nothing on the network can stall the
// encoder). Used by one goroutine.
type Publisher struct {
	s     *Server
	name  string
	h265  bool
	media *description.Media
	enc   interface {
		Encode([][]byte) ([]*rtp.Packet, error)
	}
	stream *gortsplib.ServerStream
	start  time.Time
}

// SetCodec sets the codec of stream name published with PublishAU
// (default H.264), before its first access unit; the stream's SDP names it.
func (s *Server) SetCodec(name string, c codec.Codec) error {
	if c != codec.H264 && c != codec.H265 {
		return fmt.Errorf("relay: %s: codec %q not served", name, c)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.inproc[name]
	if p == nil {
		p = s.PublishH264(name)
		s.inproc[name] = p
	}
	if p.stream != nil {
		return fmt.Errorf("relay: %s: codec set after the stream started", name)
	}
	p.h265 = c == codec.H265
	return nil
}

// PublishH264 returns a publisher for stream name. The stream appears to
// readers once the first access unit carrying SPS and PPS arrives.
func (s *Server) PublishH264(name string) *Publisher {
	return &Publisher{s: s, name: name}
}

// PublishAU publishes one access unit (NAL units without start codes) on
// stream name through an in-process publisher that it keeps per name (see
// PublishH264) until Unpublish. Each name is published by one goroutine.
func (s *Server) PublishAU(name string, au [][]byte) error {
	s.mu.Lock()
	p := s.inproc[name]
	if p == nil {
		p = s.PublishH264(name)
		s.inproc[name] = p
	}
	s.mu.Unlock()
	return p.WriteAU(au)
}

// Unpublish removes stream name published with PublishAU; without one it
// does nothing.
func (s *Server) Unpublish(name string) {
	s.mu.Lock()
	p := s.inproc[name]
	delete(s.inproc, name)
	s.mu.Unlock()
	if p != nil {
		p.Close()
	}
}

// WriteAU publishes one access unit (NAL units without start codes).
func (p *Publisher) WriteAU(au [][]byte) error {
	if p.stream == nil {
		forma, err := p.format(au)
		if forma == nil || err != nil {
			return err // nil, nil: wait for a keyframe with parameter sets
		}
		p.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
		st := gortsplib.NewServerStream(p.s.srv, &description.Session{Medias: []*description.Media{p.media}})
		p.s.mu.Lock()
		if old := p.s.streams[p.name]; old != nil {
			old.Close()
		}
		p.s.streams[p.name] = st
		p.s.mu.Unlock()
		p.stream, p.start = st, time.Now()
	}
	pkts, err := p.enc.Encode(au)
	if err != nil {
		return fmt.Errorf("relay: %s: %w", p.name, err)
	}
	now := time.Now()
	ts := uint32(now.Sub(p.start).Seconds() * 90000)
	for _, pkt := range pkts {
		pkt.Timestamp += ts
		_ = p.stream.WritePacketRTPWithNTP(p.media, pkt, now)
	}
	return nil
}

// format is the stream's format from the parameter sets of au, with its
// RTP encoder set; nil until an access unit carries them all.
func (p *Publisher) format(au [][]byte) (format.Format, error) {
	var vps, sps, pps []byte
	for _, n := range au {
		switch {
		case len(n) < 2:
		case p.h265 && (n[0]>>1)&0x3f == 32:
			vps = n
		case p.h265 && (n[0]>>1)&0x3f == 33, !p.h265 && n[0]&0x1f == 7:
			sps = n
		case p.h265 && (n[0]>>1)&0x3f == 34, !p.h265 && n[0]&0x1f == 8:
			pps = n
		}
	}
	cp := func(b []byte) []byte { return append([]byte(nil), b...) }
	if p.h265 {
		if vps == nil || sps == nil || pps == nil {
			return nil, nil
		}
		f := &format.H265{PayloadTyp: 96, VPS: cp(vps), SPS: cp(sps), PPS: cp(pps)}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, fmt.Errorf("relay: %s: %w", p.name, err)
		}
		p.enc = enc
		return f, nil
	}
	if sps == nil || pps == nil {
		return nil, nil
	}
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: cp(sps), PPS: cp(pps)}
	enc, err := f.CreateEncoder()
	if err != nil {
		return nil, fmt.Errorf("relay: %s: %w", p.name, err)
	}
	p.enc = enc
	return f, nil
}

// Close removes the stream from the relay.
func (p *Publisher) Close() {
	if p.stream == nil {
		return
	}
	p.s.mu.Lock()
	if p.s.streams[p.name] == p.stream {
		delete(p.s.streams, p.name)
	}
	p.s.mu.Unlock()
	p.stream.Close()
	p.stream = nil
}
