package agent

import "velo/masking/relay"

// relayForTest is the running agent's relay (nil outside Run).
func (a *Agent) relayForTest() *relay.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.run == nil {
		return nil
	}
	return a.run.rel
}
