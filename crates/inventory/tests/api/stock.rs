use caravan_proto::inventory::v1::{
    AdjustStockRequest, AdjustmentReason, BatchGetStockRequest, GetStockRequest, ListMovementsRequest,
    ListStockRequest, ReceiveStockRequest, movement::Kind,
};
use tonic::Code;

use crate::helpers::{reason, spawn_app};

fn receipt(product: &str, quantity: i64, request_id: &str) -> ReceiveStockRequest {
    ReceiveStockRequest {
        product: format!("products/{product}"),
        warehouse: "warehouses/sh-bonded".into(),
        quantity,
        request_id: request_id.into(),
        reference: "customs 2022-0117".into(),
    }
}

fn adjustment(product: &str, delta: i64, request_id: &str) -> AdjustStockRequest {
    AdjustStockRequest {
        product: format!("products/{product}"),
        warehouse: "warehouses/sh-bonded".into(),
        delta,
        reason: AdjustmentReason::Damaged as i32,
        request_id: request_id.into(),
        note: "crushed in transit".into(),
    }
}

#[tokio::test]
async fn a_receipt_counts_once_per_request_id() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    let first = app.client.receive_stock(receipt("tea", 25, "r-1")).await.unwrap().into_inner();
    let repeat = app.client.receive_stock(receipt("tea", 25, "r-1")).await.unwrap().into_inner();
    assert_eq!(repeat, first);
    assert_eq!((first.on_hand, first.available, first.sold_out), (25, 25, false));
    let status = app.client.receive_stock(receipt("tea", 26, "r-1")).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::AlreadyExists, "REQUEST_ID_REUSED"));
    app.client.receive_stock(receipt("tea", 5, "r-2")).await.unwrap();

    let level = app.client.get_stock(GetStockRequest { name: "stockLevels/tea".into() }).await.unwrap().into_inner();
    assert_eq!(level.on_hand, 30);
    assert_eq!(level.warehouses.len(), 1);
    assert!(level.version > first.version);
    app.check_invariants().await;
}

#[tokio::test]
async fn adjustments_need_a_reason_and_never_go_below_what_is_held() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 10).await;
    app.orders.reserve_stock(crate::helpers::reserve("order-1", &[("tea", 4)])).await.unwrap();

    let status = app.client.adjust_stock(adjustment("tea", -7, "a-1")).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let (reason_code, metadata) = reason(&status);
    assert_eq!((reason_code.as_str(), metadata["available"].as_str()), ("INSUFFICIENT_STOCK", "6"));

    let level = app.client.adjust_stock(adjustment("tea", -6, "a-2")).await.unwrap().into_inner();
    assert_eq!((level.on_hand, level.reserved, level.available, level.sold_out), (4, 4, 0, true));
    app.client.adjust_stock(adjustment("tea", -6, "a-2")).await.unwrap();

    let mut no_reason = adjustment("tea", 1, "a-3");
    no_reason.reason = 0;
    let status = app.client.adjust_stock(no_reason).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["reason"]);
    // The extremes of int64, whose absolute value does not fit one.
    for delta in [i64::MIN, i64::MIN + 1, i64::MAX] {
        let status = app.client.adjust_stock(adjustment("tea", delta, "a-4")).await.unwrap_err();
        assert_eq!(caravan_testkit::violated_fields(&status), ["delta"], "{delta}");
    }

    let movements = app
        .client
        .list_movements(ListMovementsRequest { product: "products/tea".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .movements;
    let adjust = movements.iter().find(|m| m.kind == Kind::Adjust as i32).unwrap();
    assert_eq!((adjust.on_hand_delta, adjust.reason), (-6, AdjustmentReason::Damaged as i32));
    assert_eq!(movements.iter().filter(|m| m.kind == Kind::Adjust as i32).count(), 1);
    app.check_invariants().await;
}

#[tokio::test]
async fn stock_reads_batch_and_page() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    for (i, product) in ["apricots", "raisins", "tea", "walnuts", "saffron"].iter().enumerate() {
        app.receive(product, "sh-bonded", i64::try_from(i).unwrap() + 1).await;
    }
    let batch = app
        .client
        .batch_get_stock(BatchGetStockRequest {
            names: vec![
                "stockLevels/walnuts".into(),
                "stockLevels/never-received".into(),
                "stockLevels/apricots".into(),
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .stock_levels;
    let summary: Vec<_> = batch.iter().map(|l| (l.product.as_str(), l.on_hand, l.version)).collect();
    assert_eq!(summary, [("products/walnuts", 4, 1), ("products/never-received", 0, 0), ("products/apricots", 1, 1)]);

    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page =
            app.client.list_stock(ListStockRequest { page_size: 2, page_token: token }).await.unwrap().into_inner();
        names.extend(page.stock_levels.into_iter().map(|l| l.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected = ["apricots", "raisins", "saffron", "tea", "walnuts"].map(|p| format!("stockLevels/{p}"));
    assert_eq!(names, expected);

    // Movement pages are bound to their filter.
    let page = app
        .client
        .list_movements(ListMovementsRequest { product: String::new(), page_size: 2, page_token: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.movements.len(), 2);
    let status = app
        .client
        .list_movements(ListMovementsRequest {
            product: "products/tea".into(),
            page_size: 2,
            page_token: page.next_page_token.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let rest = app
        .client
        .list_movements(ListMovementsRequest {
            product: String::new(),
            page_size: 10,
            page_token: page.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.movements.len(), 3);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn bad_stock_requests_name_every_bad_field() {
    let mut app = spawn_app().await;
    let status = app
        .client
        .receive_stock(ReceiveStockRequest {
            product: "tea".into(),
            warehouse: "warehouses/X".into(),
            quantity: 0,
            request_id: String::new(),
            reference: "x\u{7}".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        caravan_testkit::violated_fields(&status),
        ["product", "warehouse", "quantity", "request_id", "reference"]
    );
    let status = app.client.receive_stock(receipt("tea", 1, "r-1")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "no such warehouse");
    let status = app.client.get_stock(GetStockRequest { name: "products/tea".into() }).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["name"]);
    let status = app.client.batch_get_stock(BatchGetStockRequest { names: vec![] }).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["names"]);
}
