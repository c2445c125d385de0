package onvif_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"velo/onvif"
	"velo/onvif/camsim"
)

func withEvents(c *camsim.CameraConfig) { c.Events = true }

// pullUntil pulls until a message on topic path arrives (or fails the test).
func pullUntil(t *testing.T, sub *onvif.Subscription, path string, within time.Duration) onvif.NotificationMessage {
	t.Helper()
	ctx := ctxT(t)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		res, err := sub.PullMessages(ctx, time.Second, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Messages {
			if m.TopicPath() == path {
				return m
			}
		}
	}
	t.Fatalf("no %s message within %v", path, within)
	return onvif.NotificationMessage{}
}

// A PullPoint subscription on camsim receives the motor's start and stop,
// with positions, for an ONVIF move and for a hand move on the camera's web
// page; Renew extends it and Unsubscribe ends it.
func TestEventsPullPointAgainstSimulator(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("ev1", withEvents))
	cam := sim.Camera("ev1")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.HasService(onvif.NSEvents) {
		t.Fatal("Events service not found by Connect")
	}
	props, err := c.GetEventProperties(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(props.Topics, "PTZController/Move") || !slices.Contains(props.Topics, "PTZController/PTZPresets/Left") ||
		!slices.Contains(props.Dialects, onvif.TopicDialectConcreteSet) {
		t.Errorf("event properties %+v", props)
	}
	sub, err := c.CreatePullPointSubscription(ctx, onvif.SubscriptionOptions{Topics: onvif.TopicsPTZ, Termination: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sub.Address(), testPass) || cam.Subscriptions() != 1 {
		t.Fatalf("subscription %s, %d live", sub.Address(), cam.Subscriptions())
	}
	// Nothing moves: the pull waits out its timeout and returns nothing.
	t0 := time.Now()
	res, err := sub.PullMessages(ctx, time.Second, 10)
	if err != nil || len(res.Messages) != 0 || time.Since(t0) < 900*time.Millisecond {
		t.Fatalf("idle pull: %+v, %v after %v", res.Messages, err, time.Since(t0))
	}
	if err := c.GotoPreset(ctx, "main", "2"); err != nil {
		t.Fatal(err)
	}
	start := pullUntil(t, sub, "PTZController/Move", 2*time.Second)
	if v, _ := start.Data.Value("is_moving"); v != "1" {
		t.Errorf("start message data %+v", start.Data)
	}
	if p, ok := start.Data.Vector(); !ok || !near(p, 0, 0, 0, 1e-6) {
		t.Errorf("start position %v, want preset 1's", p)
	}
	stop := pullUntil(t, sub, "PTZController/Move", 3*time.Second)
	if v, _ := stop.Data.Value("is_moving"); v != "0" {
		t.Errorf("stop message data %+v", stop.Data)
	}
	if p, ok := stop.Data.Vector(); !ok || !near(p, 0.5, 0.25, 0.5, 1e-6) {
		t.Errorf("stop position %v, want preset 2's", p)
	}
	// A hand move from preset 2: Left names it, the start its position.
	cam.Tamper(camsim.Position{Pan: -0.2, Tilt: 0.1, Zoom: 0.3})
	left := pullUntil(t, sub, "PTZController/PTZPresets/Left", 2*time.Second)
	if v, _ := left.Data.Value("PresetToken"); v != "2" || left.UtcTime.IsZero() {
		t.Errorf("left message %+v", left)
	}
	old := sub.Termination
	term, err := sub.Renew(ctx, time.Minute)
	if err != nil || !term.After(old.Add(30*time.Second)) {
		t.Errorf("renew: %v → %v, %v", old, term, err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cam.Subscriptions(); n != 0 {
		t.Errorf("%d subscriptions after Unsubscribe", n)
	}
	if _, err := sub.PullMessages(ctx, time.Second, 10); err == nil {
		t.Error("pull after Unsubscribe succeeded")
	}
}

// A camera without the Events service: no subscription, ErrNotSupported.
// An old camera lists Events in GetCapabilities only.
func TestEventsServiceDiscovery(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("ev-off"), simCam("ev-legacy", withEvents, func(c *camsim.CameraConfig) { c.Quirk.NoGetServices = true }))
	ctx := ctxT(t)
	off := newClient(t, sim.Camera("ev-off"))
	if err := off.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := off.CreatePullPointSubscription(ctx, onvif.SubscriptionOptions{}); off.HasService(onvif.NSEvents) || !errors.Is(err, onvif.ErrNotSupported) {
		t.Errorf("camera without events: HasService %v, subscribe %v", off.HasService(onvif.NSEvents), err)
	}
	legacy := newClient(t, sim.Camera("ev-legacy"))
	if err := legacy.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err := legacy.CreatePullPointSubscription(ctx, onvif.SubscriptionOptions{Topics: onvif.TopicsPTZ})
	if err != nil {
		t.Fatal(err)
	}
	if err := legacy.AbsoluteMove(ctx, "main", pos(0.3, 0, 0)); err != nil {
		t.Fatal(err)
	}
	pullUntil(t, sub, "PTZController/Move", 2*time.Second)
}

// axisLikeCamera answers like Axis firmware: the subscription reference
// carries a SubscriptionId reference parameter that must come back as a SOAP
// header, the camera refuses the ConcreteSet filter, and replies use its own
// prefixes. It records the requests it received.
func axisLikeCamera(t *testing.T, got chan<- string) *httptest.Server {
	var srv *httptest.Server
	reply := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/soap+xml")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"`+
			` xmlns:wsa5="http://www.w3.org/2005/08/addressing" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tev="http://www.onvif.org/ver10/events/wsdl"`+
			` xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tns1="http://www.onvif.org/ver10/topics" xmlns:tnsaxis="http://www.axis.com/2009/event/topics"`+
			` xmlns:dom0="http://www.axis.com/2009/event"><SOAP-ENV:Body>`+body+`</SOAP-ENV:Body></SOAP-ENV:Envelope>`)
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := string(b)
		switch {
		case strings.Contains(req, "GetSystemDateAndTime"):
			now := time.Now().UTC()
			reply(w, 200, fmt.Sprintf(`<tds:GetSystemDateAndTimeResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><tds:SystemDateAndTime>`+
				`<tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time>`+
				`<tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime>`+
				`</tds:GetSystemDateAndTimeResponse>`, now.Hour(), now.Minute(), now.Second(), now.Year(), int(now.Month()), now.Day()))
			return
		case strings.Contains(req, "GetServices"):
			reply(w, 200, `<tds:GetServicesResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><tds:Service>`+
				`<tds:Namespace>http://www.onvif.org/ver10/events/wsdl</tds:Namespace><tds:XAddr>http://192.0.2.7/onvif/services</tds:XAddr>`+
				`</tds:Service></tds:GetServicesResponse>`)
			return
		}
		got <- req
		switch {
		case strings.Contains(req, "CreatePullPointSubscription>") && strings.Contains(req, "TopicExpression"):
			reply(w, 400, `<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value><SOAP-ENV:Subcode>`+
				`<SOAP-ENV:Value>wsntw:TopicExpressionDialectUnknownFault</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code>`+
				`<SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">dialect</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>`)
		case strings.Contains(req, "CreatePullPointSubscription>"):
			reply(w, 200, `<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa5:Address>http://192.0.2.7/onvif/services</wsa5:Address>`+
				`<wsa5:ReferenceParameters><dom0:SubscriptionId>42</dom0:SubscriptionId></wsa5:ReferenceParameters></tev:SubscriptionReference>`+
				`<wsnt:CurrentTime>2026-01-02T03:04:05Z</wsnt:CurrentTime><wsnt:TerminationTime>2026-01-02T03:05:05Z</wsnt:TerminationTime>`+
				`</tev:CreatePullPointSubscriptionResponse>`)
		case strings.Contains(req, "PullMessages>"):
			reply(w, 200, `<tev:PullMessagesResponse><tev:CurrentTime>2026-01-02T03:04:06Z</tev:CurrentTime><tev:TerminationTime>2026-01-02T03:05:05Z</tev:TerminationTime>`+
				`<wsnt:NotificationMessage><wsnt:Topic Dialect="http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple">tns1:PTZController/tnsaxis:Move/Channel_1</wsnt:Topic>`+
				`<wsnt:Message><tt:Message UtcTime="2026-01-02T03:04:06.123Z" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="PTZConfigurationToken" Value="1"/></tt:Source>`+
				`<tt:Key></tt:Key><tt:Data><tt:SimpleItem Name="is_moving" Value="1"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>`+
				`</tev:PullMessagesResponse>`)
		default:
			reply(w, 200, `<tev:Unknown/>`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Against Axis-shaped replies: the filter refused is dropped, the
// subscription address is reached on the configured host, the reference
// parameter and WS-Addressing headers are sent with the pull, and the Axis
// move message decodes whatever its prefixes.
func TestEventsAxisShapedReplies(t *testing.T) {
	got := make(chan string, 16)
	srv := axisLikeCamera(t, got)
	c, err := onvif.NewClient(onvif.Config{XAddr: srv.URL + "/onvif/device_service", Username: "root", Password: "pw-axis", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	// Not connected: Events is not assumed on the device address.
	if _, err := c.CreatePullPointSubscription(ctx, onvif.SubscriptionOptions{}); !errors.Is(err, onvif.ErrNotSupported) {
		t.Fatalf("subscribe before Connect: %v", err)
	}
	if err := c.Connect(ctx); err != nil || !c.HasService(onvif.NSEvents) {
		t.Fatalf("connect: %v", err)
	}
	sub, err := c.CreatePullPointSubscription(ctx, onvif.SubscriptionOptions{Topics: onvif.TopicsPTZ})
	if err != nil {
		t.Fatal(err)
	}
	if first, second := <-got, <-got; !strings.Contains(first, "tns1:PTZController//.") || strings.Contains(second, "TopicExpression") {
		t.Errorf("filter not dropped on refusal:\n%s\n%s", first, second)
	}
	res, err := sub.PullMessages(ctx, 2*time.Second, 5)
	if err != nil {
		t.Fatal(err)
	}
	pull := <-got
	for _, want := range []string{`wsa:IsReferenceParameter="true">42</SubscriptionId>`, "<wsa:To>http://192.0.2.7/onvif/services</wsa:To>", "PullMessagesRequest</wsa:Action>", "<tev:Timeout>PT2S</tev:Timeout>", "<tev:MessageLimit>5</tev:MessageLimit>"} {
		if !strings.Contains(pull, want) {
			t.Errorf("pull request lacks %q:\n%s", want, pull)
		}
	}
	if len(res.Messages) != 1 {
		t.Fatalf("messages %+v", res.Messages)
	}
	m := res.Messages[0]
	if v, _ := m.Data.Value("is_moving"); m.TopicPath() != "PTZController/Move/Channel_1" || v != "1" || m.UtcTime.Nanosecond() != 123e6 || m.PropertyOperation != "Changed" {
		t.Errorf("message %+v", m)
	}
	if _, ok := m.Data.Vector(); ok {
		t.Error("Axis message has no position, one was decoded")
	}
}
