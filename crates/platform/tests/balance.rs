//! Client-side balancing: an upstream addressed by name is spread over every
//! address the name resolves to, and follows the name as replicas come and go.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use caravan_platform::{
    CancellationToken,
    client::{Balancing, ChannelOptions, Resolver, TracedChannel},
    config::ServiceKind,
};
use caravan_proto::loadgen::v1::{
    EchoRequest, EchoResponse,
    echo_service_client::EchoServiceClient,
    echo_service_server::{EchoService, EchoServiceServer},
};
use caravan_testkit::eventually;
use futures::{StreamExt as _, stream};
use tonic::{Request, Response, Status, transport::server::TcpIncoming};

/// An echo server that counts what it served.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicU64>);

#[tonic::async_trait]
impl EchoService for Counting {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(EchoResponse { payload: request.into_inner().payload }))
    }
}

struct Replica {
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    stop: CancellationToken,
    stopped: tokio::task::JoinHandle<()>,
}

/// An echo replica on `ip`, port 0.
async fn replica(ip: [u8; 4]) -> Replica {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = Counting::default();
    let served = service.0.clone();
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    let stopped = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(EchoServiceServer::new(service))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), stopping.cancelled())
            .await
            .unwrap();
    });
    Replica { addr, served, stop, stopped }
}

/// A resolver the test controls: it answers what `addrs` holds now.
#[derive(Debug, Clone, Default)]
struct Scripted {
    addrs: Arc<Mutex<Vec<SocketAddr>>>,
    asked: Arc<AtomicU64>,
}

impl Resolver for Scripted {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + '_>> {
        assert_eq!((host, port), ("inventory-headless.caravan.svc", 50053), "the channel asks for its own name");
        self.asked.fetch_add(1, Ordering::Relaxed);
        let addrs = self.addrs.lock().unwrap().clone();
        Box::pin(async move { Ok(addrs) })
    }
}

fn channel(resolver: &Scripted) -> EchoServiceClient<TracedChannel> {
    let options = ChannelOptions {
        caller: ServiceKind::Orders,
        target: ServiceKind::Inventory,
        connect_timeout: Duration::from_secs(1),
        default_deadline: Duration::from_secs(5),
        service_key: None,
        tls: None,
        balancing: Balancing { resolver: Arc::new(resolver.clone()), interval: Duration::from_millis(50) },
        chaos: Default::default(),
    };
    let url = url::Url::parse("http://inventory-headless.caravan.svc:50053").unwrap();
    EchoServiceClient::new(TracedChannel::new(&url, options).unwrap())
}

/// `n` calls, 16 at a time; answers how many failed.
async fn calls(client: &EchoServiceClient<TracedChannel>, n: usize) -> usize {
    stream::iter(0..n)
        .map(|_| {
            let mut client = client.clone();
            async move { client.echo(EchoRequest { payload: b"walnuts".to_vec() }).await.is_err() }
        })
        .buffer_unordered(16)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await
}

#[tokio::test]
async fn calls_spread_over_every_replica_and_follow_the_name() {
    let replicas = vec![replica([127, 0, 0, 1]).await, replica([127, 0, 0, 2]).await, replica([127, 0, 0, 3]).await];
    let resolver = Scripted::default();
    *resolver.addrs.lock().unwrap() = replicas.iter().map(|r| r.addr).collect();
    let client = channel(&resolver);

    assert_eq!(calls(&client, 3000).await, 0);
    let served: Vec<u64> = replicas.iter().map(|r| r.served.load(Ordering::Relaxed)).collect();
    assert_eq!(served.iter().sum::<u64>(), 3000);
    for (i, n) in served.iter().enumerate() {
        assert!((900..=1100).contains(n), "replica {i} served {n} of 3000 ({served:?}): not 33 ± 10 %");
    }

    // Scale in: the name stops answering the third replica, which then
    // drains and stops while calls keep flowing. Not one call fails.
    let load = {
        let client = client.clone();
        tokio::spawn(async move { calls(&client, 3000).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    resolver.addrs.lock().unwrap().pop();
    let asked = resolver.asked.load(Ordering::Relaxed);
    let resolved_again = eventually(Duration::from_secs(5), || {
        let asked_now = resolver.asked.load(Ordering::Relaxed);
        async move { asked_now >= asked + 2 }
    })
    .await;
    assert!(resolved_again, "the name was looked up again");
    let third = replicas.into_iter().nth(2).unwrap();
    let before_stop = third.served.load(Ordering::Relaxed);
    third.stop.cancel();
    third.stopped.await.unwrap();
    assert_eq!(load.await.unwrap(), 0, "no call failed while a replica left");
    assert_eq!(third.served.load(Ordering::Relaxed), before_stop, "nothing reached the replica that left");
    assert_eq!(calls(&client, 300).await, 0);
}

#[tokio::test]
async fn a_name_with_no_replica_yet_fails_at_the_deadline_not_never() {
    let resolver = Scripted::default();
    let mut client = channel(&resolver);
    let mut request = Request::new(EchoRequest { payload: Vec::new() });
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = client.echo(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    // A replica appears: the next lookup finds it.
    let first = replica([127, 0, 0, 1]).await;
    *resolver.addrs.lock().unwrap() = vec![first.addr];
    let reached = eventually(Duration::from_secs(5), || {
        let mut client = client.clone();
        async move { client.echo(EchoRequest { payload: Vec::new() }).await.is_ok() }
    })
    .await;
    assert!(reached, "calls reach the replica once the name answers it");
}
