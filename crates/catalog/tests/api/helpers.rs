use caravan_catalog::Catalog;
use caravan_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use caravan_testkit::KeyedChannel as Channel;
use caravan_testkit::TestServer;

pub struct TestApp {
    pub server: TestServer,
    pub client: CatalogServiceClient<Channel>,
}

pub async fn spawn_app() -> TestApp {
    let server = TestServer::start::<Catalog>(&[]).await.expect("catalog starts");
    let client = CatalogServiceClient::new(server.channel());
    TestApp { server, client }
}
