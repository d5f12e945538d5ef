use caravan_orders::{Orders, store::Store};
use caravan_proto::orders::v1::orders_service_client::OrdersServiceClient;
use caravan_testkit::KeyedChannel as Channel;
use caravan_testkit::TestServer;

pub struct TestApp {
    pub server: TestServer,
    pub client: OrdersServiceClient<Channel>,
}

impl TestApp {
    /// The service's own store on the same database, to set up orders that
    /// PlaceOrder will create once it exists.
    pub async fn store(&self) -> Store {
        Store::new(self.server.database().connect().await.expect("connect to the test database"))
    }
}

pub async fn spawn_app() -> TestApp {
    let server = TestServer::start::<Orders>(&[]).await.expect("orders starts");
    let client = OrdersServiceClient::new(server.channel());
    TestApp { server, client }
}
