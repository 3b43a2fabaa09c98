package etcdstore

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// connNote keeps the latest reason gRPC gave for having no usable
// connection. The client turns a request that waited for a connection
// until its deadline into a bare "context deadline exceeded", which cannot
// tell a wrong CA or a refused client certificate from a cluster without
// quorum; gRPC's own error, seen by an interceptor beneath the client's,
// still says why.
type connNote struct {
	mu  sync.Mutex
	msg string
}

// balancerPrefix starts gRPC's message for a request that found no ready
// connection before its deadline; what follows is the last dial failure.
const balancerPrefix = "latest balancer error: "

func (n *connNote) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	msg := ""
	if st, ok := status.FromError(err); ok && err != nil && (st.Code() == codes.DeadlineExceeded || st.Code() == codes.Unavailable) {
		if _, after, found := strings.Cut(st.Message(), balancerPrefix); found {
			msg = after
		}
	}
	n.mu.Lock()
	n.msg = msg // a success or another failure makes an older reason stale
	n.mu.Unlock()
	return err
}

// last is the latest dial failure, "" if the latest request found a
// connection (or failed for another reason).
func (n *connNote) last() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.msg
}
