package onvif

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Config configures a Client. Defaults are filled in by NewClient.
type Config struct {
	// XAddr is the device service URL, e.g. http://192.0.2.10/onvif/device_service.
	XAddr string
	// Username and Password authenticate the operator; empty Username means
	// unauthenticated calls only. Password never appears in errors or logs.
	Username string
	Password string
	// Timeout bounds each call (connect + reply). Default 10 s.
	Timeout time.Duration
	// MaxBody bounds the bytes read from one reply. Default 4 MiB.
	MaxBody int64
	// KeepXAddrHost disables rewriting of service XAddrs' host:port to the
	// host:port of XAddr (the rewrite is on by default: many cameras report a
	// wrong or NATed address; see firmware-notes/generic-oem.md).
	KeepXAddrHost bool
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
	// Transport overrides the HTTP transport (tests); nil = a dedicated one.
	Transport http.RoundTripper
}

// Client talks to one camera. It is safe for concurrent use. It holds no
// goroutines, so it needs no Close beyond CloseIdleConnections.
type Client struct {
	cfg   Config
	base  *url.URL
	http  *http.Client
	now   func() time.Time
	creds bool

	mu        sync.Mutex
	offset    time.Duration // camera UTC − our UTC
	synced    bool
	connected bool
	services  map[string]string // namespace → XAddr
	digest    *digestState      // set after the first Digest challenge
}

const (
	defaultTimeout = 10 * time.Second
	defaultMaxBody = 4 << 20
)

// NewClient validates cfg and returns a client. No I/O happens here.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = defaultMaxBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	u, err := url.Parse(cfg.XAddr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("onvif: bad XAddr %q: want http(s)://host[:port]/path", RedactURL(cfg.XAddr))
	}
	if u.User != nil {
		return nil, fmt.Errorf("onvif: XAddr %s must not carry credentials; use Username/Password", RedactURL(cfg.XAddr))
	}
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       60 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout,
			TLSHandshakeTimeout:   5 * time.Second,
		}
	}
	c := &Client{
		cfg:      cfg,
		base:     u,
		http:     &http.Client{Transport: rt, Timeout: cfg.Timeout, CheckRedirect: noRedirect},
		now:      cfg.Now,
		creds:    cfg.Username != "",
		services: map[string]string{NSDevice: u.String()},
	}
	return c, nil
}

// noRedirect keeps credentials (digest answers) from following a redirect to
// another host.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// XAddr returns the device service address.
func (c *Client) XAddr() string { return c.base.String() }

// Host returns host[:port] of the device service address.
func (c *Client) Host() string { return c.base.Host }

// ClockOffset returns the measured camera clock offset (camera − local).
func (c *Client) ClockOffset() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.synced
}

// CloseIdleConnections releases pooled connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// call performs one SOAP request to the service with namespace ns. It signs
// with WS-Security (when credentials are set), answers HTTP digest challenges,
// and re-syncs the clock once when the camera says NotAuthorized.
func (c *Client) call(ctx context.Context, ns, action string, req any, wantLocal string, out any) error {
	addr, err := c.serviceAddr(ns)
	if err != nil {
		return err
	}
	err = c.do(ctx, addr, action, req, wantLocal, out, c.creds)
	if c.creds && errors.Is(err, ErrUnauthorized) && ctx.Err() == nil {
		// The camera clock may have moved (or we never synced): re-sync once.
		if serr := c.SyncTime(ctx); serr == nil {
			err = c.do(ctx, addr, action, req, wantLocal, out, true)
		}
	}
	return err
}

// callAnon performs an unauthenticated call to the device service
// (GetSystemDateAndTime is PRE_AUTH).
func (c *Client) callAnon(ctx context.Context, action string, req any, wantLocal string, out any) error {
	return c.do(ctx, c.base.String(), action, req, wantLocal, out, false)
}

func (c *Client) serviceAddr(ns string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.services[ns]; ok {
		return a, nil
	}
	if !c.connected && (ns == NSMedia || ns == NSPTZ) {
		// Services not listed yet: most cameras serve everything on the
		// device address; Connect refines this.
		return c.base.String(), nil
	}
	return "", fmt.Errorf("service %s: %w", ns, ErrNotSupported)
}

func (c *Client) do(ctx context.Context, addr, action string, req any, wantLocal string, out any, auth bool) error {
	var header []byte
	if auth {
		h, err := c.wsseHeader()
		if err != nil {
			return err
		}
		header = h
	}
	body, err := buildEnvelope(header, req)
	if err != nil {
		return err
	}
	status, data, err := c.post(ctx, addr, action, body, auth)
	if err != nil {
		return err
	}
	return replyError(decodeEnvelope(data, action, wantLocal, status, out), status)
}

// post sends body and returns status and at most MaxBody bytes of reply.
func (c *Client) post(ctx context.Context, addr, action string, body []byte, auth bool) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	send := func(authz string) (*http.Response, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, addr, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("request: %w", err)
		}
		r.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+action+`"`)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		resp, err := c.http.Do(r)
		if err != nil {
			return nil, scrubURLError(err)
		}
		return resp, nil
	}
	var authz string
	if auth {
		authz = c.digestAuthorization(addr, body)
	}
	resp, err := send(authz)
	if err != nil {
		return 0, nil, err
	}
	if auth && resp.StatusCode == http.StatusUnauthorized {
		ch, ok, err := parseDigestChallenge(resp.Header.Values("WWW-Authenticate"))
		drain(resp)
		if err != nil {
			return resp.StatusCode, nil, fmt.Errorf("HTTP 401: %v: %w", err, ErrUnauthorized)
		}
		if !ok {
			return resp.StatusCode, nil, fmt.Errorf("HTTP 401 without a usable Digest challenge: %w", ErrUnauthorized)
		}
		c.mu.Lock()
		c.digest = &digestState{ch: ch}
		c.mu.Unlock()
		resp, err = send(c.digestAuthorization(addr, body))
		if err != nil {
			return 0, nil, err
		}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBody+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read reply: %w", scrubURLError(err))
	}
	if int64(len(data)) > c.cfg.MaxBody {
		return resp.StatusCode, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.cfg.MaxBody)
	}
	return resp.StatusCode, data, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// scrubURLError removes any URL userinfo from transport errors.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, RedactURL(ue.URL), ue.Err)
	}
	return err
}

// RedactURL returns u with any userinfo removed (for printing).
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		// Unparseable: cut everything between "://" and the last "@".
		if i := strings.Index(u, "://"); i >= 0 {
			if j := strings.LastIndexByte(u, '@'); j > i {
				return u[:i+3] + u[j+1:]
			}
		}
		return u
	}
	p.User = nil
	return p.String()
}

// wsseHeader builds a UsernameToken with PasswordDigest, Created on the
// camera's clock.
func (c *Client) wsseHeader() ([]byte, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	created := c.now().Add(off).UTC().Format("2006-01-02T15:04:05.000Z")
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(c.cfg.Password))
	digest := base64.StdEncoding.EncodeToString(h.Sum(nil))
	var b bytes.Buffer
	b.WriteString(`<wsse:Security s:mustUnderstand="1" xmlns:wsse="` + NSWsse + `" xmlns:wsu="` + NSWsu + `">`)
	b.WriteString(`<wsse:UsernameToken><wsse:Username>`)
	if err := escapeText(&b, c.cfg.Username); err != nil {
		return nil, err
	}
	b.WriteString(`</wsse:Username><wsse:Password Type="` + pwDigestType + `">` + digest + `</wsse:Password>`)
	b.WriteString(`<wsse:Nonce EncodingType="` + nonceEncType + `">` + base64.StdEncoding.EncodeToString(nonce) + `</wsse:Nonce>`)
	b.WriteString(`<wsu:Created>` + created + `</wsu:Created></wsse:UsernameToken></wsse:Security>`)
	return b.Bytes(), nil
}

// replyError classifies a decoded reply: a SOAP fault first, then the
// HTTP status (401/403 → ErrUnauthorized, other non-2xx → ErrDevice).
func replyError(derr error, status int) error {
	var fe *FaultError
	if errors.As(derr, &fe) {
		return derr
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return fmt.Errorf("HTTP %d: %w", status, ErrUnauthorized)
	}
	if status/100 != 2 {
		if derr == nil {
			return fmt.Errorf("HTTP %d without SOAP fault: %w", status, ErrDevice)
		}
		return fmt.Errorf("HTTP %d: %w", status, derr)
	}
	return derr
}
