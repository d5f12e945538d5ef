use caravan_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use caravan_scheduling::Scheduling;
use caravan_testkit::KeyedChannel as Channel;
use caravan_testkit::TestServer;

pub struct TestApp {
    pub _server: TestServer,
    pub client: SchedulingServiceClient<Channel>,
}

/// Scheduling alone: its upstreams point at closed ports.
pub async fn spawn_app() -> TestApp {
    let server = TestServer::start::<Scheduling>(&[]).await.expect("scheduling starts");
    let client = SchedulingServiceClient::new(server.channel());
    TestApp { _server: server, client }
}
