use caravan_inventory::Inventory;
use caravan_platform::testing::KeyedChannel as Channel;
use caravan_platform::testing::TestServer;
use caravan_proto::inventory::v1::inventory_service_client::InventoryServiceClient;

pub struct TestApp {
    pub _server: TestServer,
    pub client: InventoryServiceClient<Channel>,
}

pub async fn spawn_app() -> TestApp {
    let server = TestServer::start::<Inventory>(&[]).await.expect("inventory starts");
    let client = InventoryServiceClient::new(server.channel());
    TestApp { _server: server, client }
}
