use caravan_proto::inventory::v1::{CreateWarehouseRequest, GetWarehouseRequest, ListWarehousesRequest, Warehouse};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::spawn_app;

fn warehouse(display_name: &str, priority: i32) -> Option<Warehouse> {
    Some(Warehouse { display_name: display_name.into(), location: "Shanghai".into(), priority, ..Default::default() })
}

fn create(id: &str, display_name: &str, priority: i32) -> CreateWarehouseRequest {
    CreateWarehouseRequest {
        warehouse: warehouse(display_name, priority),
        warehouse_id: id.into(),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn created_warehouses_read_back_and_ids_are_unique() {
    let mut app = spawn_app().await;
    let created =
        app.client.create_warehouse(create("sh-bonded", "Shanghai bonded warehouse", 1)).await.unwrap().into_inner();
    assert_eq!(created.name, "warehouses/sh-bonded");
    assert!(created.create_time.is_some());
    let read = app.client.get_warehouse(GetWarehouseRequest { name: created.name.clone() }).await.unwrap().into_inner();
    assert_eq!(read, created);

    let status = app.client.create_warehouse(create("sh-bonded", "Another", 2)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let read = app.client.get_warehouse(GetWarehouseRequest { name: created.name }).await.unwrap().into_inner();
    assert_eq!(read.display_name, "Shanghai bonded warehouse", "the refused create changed nothing");
}

#[tokio::test]
async fn list_is_in_priority_order_across_pages() {
    let mut app = spawn_app().await;
    for (id, priority) in [("wh-c", 5), ("wh-a", 1), ("wh-d", 5), ("wh-b", 3), ("wh-e", 9)] {
        app.client.create_warehouse(create(id, id, priority)).await.unwrap();
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .list_warehouses(ListWarehousesRequest { page_size: 2, page_token: token })
            .await
            .unwrap()
            .into_inner();
        assert!(page.warehouses.len() <= 2);
        names.extend(page.warehouses.into_iter().map(|w| w.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names, ["warehouses/wh-a", "warehouses/wh-b", "warehouses/wh-c", "warehouses/wh-d", "warehouses/wh-e"]);
}

#[tokio::test]
async fn bad_requests_name_every_bad_field() {
    let mut app = spawn_app().await;
    let status = app.client.create_warehouse(create("X", " ", -1)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> =
        status.get_error_details().bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["warehouse_id", "warehouse.display_name", "warehouse.priority"]);

    let status =
        app.client.get_warehouse(GetWarehouseRequest { name: "warehouses/none-here".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .client
        .list_warehouses(ListWarehousesRequest { page_size: 0, page_token: "6b313a78".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "a token with no priority/id key");
}

#[tokio::test]
async fn a_repeated_request_id_gets_the_first_answer() {
    let mut app = spawn_app().await;
    let mut request = create("sh-bonded", "Shanghai bonded warehouse", 1);
    request.request_id = "5f0c6a9e-7a3b-4d43-9d6e-1f2a3b4c5d6e".into();
    let first = app.client.create_warehouse(request.clone()).await.unwrap().into_inner();
    // Without the request id this would be ALREADY_EXISTS: the retry is recognised instead.
    let again = app.client.create_warehouse(request.clone()).await.unwrap().into_inner();
    assert_eq!(again, first);

    request.warehouse.as_mut().unwrap().display_name = "Another name".into();
    let status = app.client.create_warehouse(request).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "REQUEST_ID_REUSED");
}
