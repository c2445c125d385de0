package relay

import (
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
)

// Publisher feeds an H.264 stream into the relay from this process (no
// RTSP client, so nothing on the network can stall the encoder). Used by
// one goroutine.
type Publisher struct {
	s      *Server
	name   string
	media  *description.Media
	enc    *rtph264.Encoder
	stream *gortsplib.ServerStream
	start  time.Time
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
		var sps, pps []byte
		for _, n := range au {
			if len(n) == 0 {
				continue
			}
			switch n[0] & 0x1f {
			case 7:
				sps = n
			case 8:
				pps = n
			}
		}
		if sps == nil || pps == nil {
			return nil // wait for a keyframe with parameter sets
		}
		forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: append([]byte(nil), sps...), PPS: append([]byte(nil), pps...)}
		enc, err := forma.CreateEncoder()
		if err != nil {
			return fmt.Errorf("relay: %s: %w", p.name, err)
		}
		p.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
		st := gortsplib.NewServerStream(p.s.srv, &description.Session{Medias: []*description.Media{p.media}})
		p.s.mu.Lock()
		if old := p.s.streams[p.name]; old != nil {
			old.Close()
		}
		p.s.streams[p.name] = st
		p.s.mu.Unlock()
		p.enc, p.stream, p.start = enc, st, time.Now()
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
