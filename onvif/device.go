package onvif

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DeviceInfo is the camera's identity (GetDeviceInformation).
type DeviceInfo struct {
	Manufacturer    string `xml:"Manufacturer" json:"manufacturer"`
	Model           string `xml:"Model" json:"model"`
	FirmwareVersion string `xml:"FirmwareVersion" json:"firmware"`
	SerialNumber    string `xml:"SerialNumber" json:"serial"`
	HardwareID      string `xml:"HardwareId" json:"hardware_id"`
}

// Service is one entry of GetServices.
type Service struct {
	Namespace string `xml:"Namespace" json:"namespace"`
	XAddr     string `xml:"XAddr" json:"xaddr"`
	Version   struct {
		Major int `xml:"Major" json:"major"`
		Minor int `xml:"Minor" json:"minor"`
	} `xml:"Version" json:"version"`
}

// GetDeviceInformation returns manufacturer, model, firmware, serial and
// hardware id.
func (c *Client) GetDeviceInformation(ctx context.Context) (DeviceInfo, error) {
	var r DeviceInfo
	err := c.call(ctx, NSDevice, NSDevice+"/GetDeviceInformation",
		struct {
			XMLName struct{} `xml:"tds:GetDeviceInformation"`
		}{}, "GetDeviceInformationResponse", &r)
	if err != nil {
		return r, c.wrap("GetDeviceInformation", err)
	}
	return r, nil
}

// GetDeviceInformationAnon calls GetDeviceInformation without credentials,
// to learn whether a discovered device needs them.
func (c *Client) GetDeviceInformationAnon(ctx context.Context) (DeviceInfo, error) {
	var r DeviceInfo
	err := c.callAnon(ctx, NSDevice+"/GetDeviceInformation",
		struct {
			XMLName struct{} `xml:"tds:GetDeviceInformation"`
		}{}, "GetDeviceInformationResponse", &r)
	if err != nil {
		return r, c.wrap("GetDeviceInformation", err)
	}
	return r, nil
}

func (c *Client) wrap(op string, err error) error {
	return fmt.Errorf("onvif: %s on %s: %w", op, c.base.Host, err)
}

// dateTime is tt:DateTime.
type dateTime struct {
	Time struct {
		Hour   int `xml:"Hour"`
		Minute int `xml:"Minute"`
		Second int `xml:"Second"`
	} `xml:"Time"`
	Date struct {
		Year  int `xml:"Year"`
		Month int `xml:"Month"`
		Day   int `xml:"Day"`
	} `xml:"Date"`
}

func (d *dateTime) toTime() (time.Time, bool) {
	if d == nil || d.Date.Year < 1900 || d.Date.Month < 1 || d.Date.Month > 12 || d.Date.Day < 1 || d.Date.Day > 31 ||
		d.Time.Hour < 0 || d.Time.Hour > 23 || d.Time.Minute < 0 || d.Time.Minute > 59 || d.Time.Second < 0 || d.Time.Second > 60 {
		return time.Time{}, false
	}
	return time.Date(d.Date.Year, time.Month(d.Date.Month), d.Date.Day, d.Time.Hour, d.Time.Minute, d.Time.Second, 0, time.UTC), true
}

// SystemTime is what GetSystemDateAndTime reported.
type SystemTime struct {
	// UTC is the camera's UTC time (from UTCDateTime, or LocalDateTime
	// when UTCDateTime is missing — see docs/onvif.md).
	UTC time.Time `json:"utc"`
	// FromLocal is true when UTC was taken from LocalDateTime.
	FromLocal bool   `json:"from_local,omitempty"`
	TZ        string `json:"tz,omitempty"`
	NTP       bool   `json:"ntp"`
	DST       bool   `json:"dst"`
}

type systemDateTimeResp struct {
	SystemDateAndTime struct {
		DateTimeType    string              `xml:"DateTimeType"`
		DaylightSavings bool                `xml:"DaylightSavings"`
		TimeZone        struct{ TZ string } `xml:"TimeZone"`
		UTCDateTime     *dateTime           `xml:"UTCDateTime"`
		LocalDateTime   *dateTime           `xml:"LocalDateTime"`
	} `xml:"SystemDateAndTime"`
}

// GetSystemDateAndTime calls the PRE_AUTH operation without credentials.
func (c *Client) GetSystemDateAndTime(ctx context.Context) (SystemTime, error) {
	st, _, _, err := c.getSystemTime(ctx)
	return st, err
}

func (c *Client) getSystemTime(ctx context.Context) (SystemTime, time.Time, time.Time, error) {
	var r systemDateTimeResp
	t0 := c.now()
	err := c.callAnon(ctx, NSDevice+"/GetSystemDateAndTime",
		struct {
			XMLName struct{} `xml:"tds:GetSystemDateAndTime"`
		}{}, "GetSystemDateAndTimeResponse", &r)
	t1 := c.now()
	if err != nil {
		return SystemTime{}, t0, t1, c.wrap("GetSystemDateAndTime", err)
	}
	s := r.SystemDateAndTime
	st := SystemTime{TZ: s.TimeZone.TZ, NTP: strings.EqualFold(s.DateTimeType, "NTP"), DST: s.DaylightSavings}
	if t, ok := s.UTCDateTime.toTime(); ok {
		st.UTC = t
	} else if t, ok := s.LocalDateTime.toTime(); ok {
		st.UTC, st.FromLocal = t, true
	} else {
		return st, t0, t1, c.wrap("GetSystemDateAndTime", fmt.Errorf("%w: no valid UTCDateTime or LocalDateTime", ErrMalformed))
	}
	return st, t0, t1, nil
}

// SyncTime measures the camera clock offset with an unauthenticated
// GetSystemDateAndTime: offset = camUTC − (tSend+tRecv)/2. Every later
// WS-Security Created uses it.
func (c *Client) SyncTime(ctx context.Context) error {
	st, t0, t1, err := c.getSystemTime(ctx)
	if err != nil {
		return err
	}
	mid := t0.Add(t1.Sub(t0) / 2)
	// The camera reports whole seconds: add half a second to centre the error.
	off := st.UTC.Add(500 * time.Millisecond).Sub(mid)
	c.mu.Lock()
	c.offset, c.synced = off, true
	c.mu.Unlock()
	return nil
}

// GetHostname returns the camera's hostname.
func (c *Client) GetHostname(ctx context.Context) (string, error) {
	var r struct {
		HostnameInformation struct {
			FromDHCP bool   `xml:"FromDHCP"`
			Name     string `xml:"Name"`
		} `xml:"HostnameInformation"`
	}
	err := c.call(ctx, NSDevice, NSDevice+"/GetHostname",
		struct {
			XMLName struct{} `xml:"tds:GetHostname"`
		}{}, "GetHostnameResponse", &r)
	if err != nil {
		return "", c.wrap("GetHostname", err)
	}
	return r.HostnameInformation.Name, nil
}

// GetServices lists the camera's services (all of them, in order).
func (c *Client) GetServices(ctx context.Context) ([]Service, error) {
	var r struct {
		Service []Service `xml:"Service"`
	}
	err := c.call(ctx, NSDevice, NSDevice+"/GetServices",
		struct {
			XMLName           struct{} `xml:"tds:GetServices"`
			IncludeCapability bool     `xml:"tds:IncludeCapability"`
		}{}, "GetServicesResponse", &r)
	if err != nil {
		return nil, c.wrap("GetServices", err)
	}
	for i := range r.Service {
		r.Service[i].Namespace = strings.TrimSpace(r.Service[i].Namespace)
		r.Service[i].XAddr = strings.TrimSpace(r.Service[i].XAddr)
	}
	return r.Service, nil
}

// Capabilities is the subset of GetCapabilities we use as a fallback for
// cameras without GetServices.
type Capabilities struct {
	Device  string `json:"device,omitempty"`
	Media   string `json:"media,omitempty"`
	PTZ     string `json:"ptz,omitempty"`
	Events  string `json:"events,omitempty"`
	Imaging string `json:"imaging,omitempty"`
}

// GetCapabilities returns service addresses from the legacy call.
func (c *Client) GetCapabilities(ctx context.Context) (Capabilities, error) {
	type x struct {
		XAddr string `xml:"XAddr"`
	}
	var r struct {
		Capabilities struct {
			Device  *x `xml:"Device"`
			Media   *x `xml:"Media"`
			PTZ     *x `xml:"PTZ"`
			Events  *x `xml:"Events"`
			Imaging *x `xml:"Imaging"`
		} `xml:"Capabilities"`
	}
	err := c.call(ctx, NSDevice, NSDevice+"/GetCapabilities",
		struct {
			XMLName  struct{} `xml:"tds:GetCapabilities"`
			Category string   `xml:"tds:Category"`
		}{Category: "All"}, "GetCapabilitiesResponse", &r)
	if err != nil {
		return Capabilities{}, c.wrap("GetCapabilities", err)
	}
	get := func(p *x) string {
		if p == nil {
			return ""
		}
		return strings.TrimSpace(p.XAddr)
	}
	cp := r.Capabilities
	return Capabilities{Device: get(cp.Device), Media: get(cp.Media), PTZ: get(cp.PTZ), Events: get(cp.Events), Imaging: get(cp.Imaging)}, nil
}

// Connect syncs the clock and learns the service addresses: GetServices,
// falling back to GetCapabilities. Service XAddrs are rewritten to the
// configured host:port unless KeepXAddrHost is set.
func (c *Client) Connect(ctx context.Context) error {
	if err := c.SyncTime(ctx); err != nil {
		return err
	}
	svcs, err := c.GetServices(ctx)
	found := map[string]string{}
	if err == nil {
		for _, s := range svcs {
			if s.Namespace != "" && s.XAddr != "" {
				found[s.Namespace] = s.XAddr
			}
		}
	} else {
		caps, cerr := c.GetCapabilities(ctx)
		if cerr != nil {
			return fmt.Errorf("%w (GetServices: %v)", cerr, err)
		}
		for ns, a := range map[string]string{NSMedia: caps.Media, NSPTZ: caps.PTZ, NSEvents: caps.Events, NSImaging: caps.Imaging} {
			if a != "" {
				found[ns] = a
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.services = map[string]string{NSDevice: c.base.String()}
	c.connected = true
	for ns, a := range found {
		if ns == NSDevice {
			continue
		}
		c.services[ns] = c.fixXAddr(a)
	}
	return nil
}

// fixXAddr rewrites a service address reported by the camera to the host
// and port we reach the camera on (quirk: cheap OEM firmware reports a
// wrong or NATed IP/port; see firmware-notes/generic-oem.md).
func (c *Client) fixXAddr(a string) string {
	u, err := url.Parse(a)
	if err != nil || u.Host == "" {
		return c.base.String()
	}
	u.User = nil
	if !c.cfg.KeepXAddrHost {
		u.Host = c.base.Host
		u.Scheme = c.base.Scheme
	}
	return u.String()
}

// HasService reports whether Connect found a service with namespace ns.
func (c *Client) HasService(ns string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.services[ns]
	return ok
}

// ServiceAddr returns the address used for namespace ns ("" if unknown).
func (c *Client) ServiceAddr(ns string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.services[ns]
}
