package telemetry

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MaxIncomingBytes bounds an MQTT packet Velo's client accepts from any
// broker. paho allocates a packet's whole length as announced in its
// header before reading it, so a hostile broker or publisher could make
// Velo allocate 256 MiB per packet; commands are at most 16 KiB.
const MaxIncomingBytes = 64 << 10

// dialBounded opens the broker connection the way paho does for tcp,
// mqtt, unix and TLS URLs, and wraps it so a packet announced longer than
// MaxIncomingBytes ends the connection before paho allocates it.
func dialBounded(uri *url.URL, opts mqtt.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: opts.ConnectTimeout}
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		conn, err = d.Dial("tcp", uri.Host)
	case "unix":
		conn, err = d.Dial("unix", uri.Path)
	case "ssl", "tls", "mqtts":
		conn, err = tls.DialWithDialer(d, "tcp", uri.Host, opts.TLSConfig)
	default:
		return nil, fmt.Errorf("scheme %q not supported", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &boundedConn{Conn: conn, max: MaxIncomingBytes}, nil
}

// boundedConn follows MQTT framing on the read side: a fixed header (one
// byte, then the remaining length in 1 to 4 bytes of 7 bits), then that
// many bytes.
type boundedConn struct {
	net.Conn
	max int

	body   int // bytes of the current packet's body still to come
	inLen  bool
	length int
	shift  uint
}

func (c *boundedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if ferr := c.follow(p[:n]); ferr != nil {
		c.Conn.Close()
		return 0, ferr
	}
	return n, err
}

// follow advances the framing over b; an error for an oversized packet.
func (c *boundedConn) follow(b []byte) error {
	for len(b) > 0 {
		switch {
		case c.body > 0:
			k := min(c.body, len(b))
			c.body -= k
			b = b[k:]
		case !c.inLen: // packet type byte
			c.inLen, c.length, c.shift = true, 0, 0
			b = b[1:]
		default: // one byte of the remaining length
			v := b[0]
			b = b[1:]
			c.length |= int(v&0x7f) << c.shift
			c.shift += 7
			if c.length > c.max {
				return fmt.Errorf("mqtt: a packet of %d bytes or more announced; at most %d accepted", c.length, c.max)
			}
			if v&0x80 == 0 {
				c.inLen, c.body = false, c.length
			} else if c.shift >= 28 {
				return fmt.Errorf("mqtt: malformed remaining length")
			}
		}
	}
	return nil
}
