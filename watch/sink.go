package watch

import (
	"context"

	"github.com/tidemark/tidemark/client"
)

// Sink stores change events. Write stores evs, in order, all or none; an
// error that wraps *client.RejectedError means the events were refused for
// good (retrying them would not help), any other error that they may be
// retried. The watcher calls Write from one goroutine at a time.
type Sink interface {
	Write(ctx context.Context, evs []client.Event) error
}

// ClientSink writes through a Tidemark client, as one batch request per
// call, retrying 429, 5xx and network errors as the client does.
func ClientSink(c *client.Client) Sink { return clientSink{c} }

type clientSink struct{ c *client.Client }

func (s clientSink) Write(ctx context.Context, evs []client.Event) error {
	_, err := s.c.WriteBatch(ctx, evs)
	return err
}
