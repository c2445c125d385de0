package ptzlock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"velo/agent/event"
	"velo/onvif"
)

// eventDevice is a camera that may offer the ONVIF Events service
// (onvif.*Client). Where it does, the lock pulls PTZ motion events beside
// its polling, so a hand move is seen within one pull, not one poll.
type eventDevice interface {
	HasService(ns string) bool
	CreatePullPointSubscription(ctx context.Context, opt onvif.SubscriptionOptions) (*onvif.Subscription, error)
}

const (
	// subscriptionTerm is the subscription lifetime asked for; it is
	// renewed at half of it.
	subscriptionTerm = time.Minute
	// pullWait is how long one PullMessages waits for a message.
	pullWait = 5 * time.Second
	// pullLimit is the most messages taken per pull.
	pullLimit = 32
	// unsubscribeTimeout bounds the Unsubscribe sent when the lock stops.
	unsubscribeTimeout = 2 * time.Second
)

// motionNews is what the pull loop tells the reconcile loop of one PTZ
// event.
type motionNews struct {
	topic string
	// pos is the position the event gives (nil if none); zoomKnown is
	// false when it gave pan/tilt only.
	pos       *event.Position
	zoomKnown bool
	// left is the preset the camera says it left (PTZPresets/Left).
	left string
}

func (c *LockConfig) applyEventDefaults() {
	if c.MotionInterval <= 0 {
		c.MotionInterval = 100 * time.Millisecond
	}
	c.MotionInterval = min(c.MotionInterval, c.Interval)
	if c.MotionWatch <= 0 {
		c.MotionWatch = 2 * time.Second
	}
	if c.EventRetry <= 0 {
		c.EventRetry = time.Minute
	}
}

// startEvents starts the pull loop when the camera offers events; the
// returned channel is nil otherwise (polling alone).
func (l *Lock) startEvents(ctx context.Context, wg *sync.WaitGroup) <-chan motionNews {
	dev, ok := l.dev.(eventDevice)
	if !ok || !dev.HasService(onvif.NSEvents) {
		return nil
	}
	news := make(chan motionNews, 16)
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.pullLoop(ctx, dev, news)
	}()
	return news
}

// pullLoop keeps a subscription and forwards PTZ events until ctx ends. A
// failed subscription is reported once (polling goes on: it is the floor)
// and tried again every EventRetry.
func (l *Lock) pullLoop(ctx context.Context, dev eventDevice, news chan<- motionNews) {
	lost := false
	for {
		err := l.pullSubscription(ctx, dev, news, func() {
			if lost {
				lost = false
				l.cfg.Log.Info().Str("camera", l.cfg.Camera).Msg("PTZ events restored")
			}
		})
		if ctx.Err() != nil {
			return
		}
		if !lost {
			lost = true
			l.cfg.Log.Warn().Str("camera", l.cfg.Camera).Err(err).Dur("poll_interval", l.cfg.Interval).
				Msg("PTZ events lost: position polled only")
		}
		t := time.NewTimer(l.cfg.EventRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pullSubscription subscribes to the PTZ topics, then pulls (renewing at
// half the term), calling pulled after each pull the camera answered,
// until an error or ctx ends; it unsubscribes on the way out.
func (l *Lock) pullSubscription(ctx context.Context, dev eventDevice, news chan<- motionNews, pulled func()) error {
	sub, err := dev.CreatePullPointSubscription(ctx, onvif.SubscriptionOptions{Topics: onvif.TopicsPTZ, Termination: subscriptionTerm})
	if err != nil {
		return err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unsubscribeTimeout)
		defer cancel()
		_ = sub.Unsubscribe(uctx) // best effort: the subscription expires anyway
	}()
	renew, renewAt := true, time.Now().Add(subscriptionTerm/2)
	for {
		if renew && time.Now().After(renewAt) {
			renewAt = time.Now().Add(subscriptionTerm / 2)
			var fe *onvif.FaultError
			if _, err := sub.Renew(ctx, subscriptionTerm); errors.As(err, &fe) {
				// A camera refusing Renew keeps the subscription alive by
				// the pulls (ONVIF's default); if not, the next pull fails.
				renew = false
			} else if err != nil {
				return err
			}
		}
		res, err := sub.PullMessages(ctx, pullWait, pullLimit)
		if err != nil {
			return err
		}
		pulled()
		for _, m := range res.Messages {
			n, ok := motionFrom(m)
			if !ok {
				continue
			}
			select {
			case news <- n:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// motionFrom reads a PTZ controller event (any vendor's topic below
// PTZController: Axis tnsaxis:Move, ONVIF PTZPresets/…); other topics are
// not motion.
func motionFrom(m onvif.NotificationMessage) (motionNews, bool) {
	path := m.TopicPath()
	if !strings.HasPrefix(path, "PTZController/") {
		return motionNews{}, false
	}
	n := motionNews{topic: m.Topic}
	if v, ok := m.Data.Vector(); ok {
		if p, ok := position(onvif.PTZStatus{Position: v}); ok {
			n.pos, n.zoomKnown = &p, v.Zoom != nil
		}
	}
	if strings.HasPrefix(path, "PTZController/PTZPresets/Left") {
		n.left, _ = m.Data.Value("PresetToken")
	}
	return n, true
}

// onMotion acts on a PTZ event: blank at once when the event itself puts
// the camera off the view (its position, or "left" the held preset), and
// in any case read the status now and every MotionInterval for a while.
func (l *Lock) onMotion(ctx context.Context, lp *loop, n motionNews) {
	lp.watchUntil = time.Now().Add(l.cfg.MotionWatch)
	if l.Held() { // commissioning: the moves are the installer's
		return
	}
	switch {
	case n.pos != nil:
		p := *n.pos
		if !n.zoomKnown {
			p.Zoom = l.cfg.Preset.Zoom // not judged: the status read will
		}
		if l.inside(p) {
			return
		}
		l.setLast(p)
		if l.setApproved(false) {
			l.drifted(ctx, lp, &p, fmt.Sprintf("off preset by %.3f (tolerance %.3f; camera event %s)", l.distance(p), l.cfg.Preset.Tolerance, n.topic))
		}
	case n.left != "" && n.left == l.cfg.Preset.Token:
		if l.setApproved(false) {
			l.drifted(ctx, lp, l.LastPosition(), fmt.Sprintf("camera event %s: left preset %s", n.topic, n.left))
		}
	}
}
