//! Fixed reference data for the simulator: regions with their districts and streets, agency
//! name patterns per level, the inspection item list with legal bases, and the word lists that
//! names and free texts are drawn from.

use saoma_domain::registry::EnforcementDomain;

pub struct ProvinceDef {
    pub code: &'static str,
    pub name: &'static str,
    /// 直辖市: no separate city level, districts sit directly under the province.
    pub municipality: bool,
    pub cities: &'static [CityDef],
    /// Brand words typical for enterprises of this province.
    pub brands: &'static [&'static str],
}

pub struct CityDef {
    pub code: &'static str,
    pub name: &'static str,
    pub counties: &'static [CountyDef],
}

pub struct CountyDef {
    pub code: &'static str,
    pub name: &'static str,
    /// The name without 区/市/县, as used in police sub-bureau names (荷塘分局).
    pub short: &'static str,
    /// Streets and towns (街道/乡镇) with their own comprehensive enforcement.
    pub towns: &'static [&'static str],
}

impl CountyDef {
    /// A county-level city (醴陵市) is named on its own, a district with its city (株洲市荷塘区).
    pub fn full_name(&self, city: &CityDef) -> String {
        if self.name.ends_with('市') {
            self.name.to_string()
        } else {
            format!("{}{}", city.name, self.name)
        }
    }
}

pub const PROVINCES: &[ProvinceDef] = &[
    ProvinceDef {
        code: "630000",
        name: "青海省",
        municipality: false,
        brands: &["三江源", "昆仑", "祁连", "青藏", "高原", "青海湖", "柴达木"],
        cities: &[
            CityDef {
                code: "630100",
                name: "西宁市",
                counties: &[
                    CountyDef {
                        code: "630102",
                        name: "城东区",
                        short: "城东",
                        towns: &["东关大街街道", "清真巷街道"],
                    },
                    CountyDef {
                        code: "630103",
                        name: "城中区",
                        short: "城中",
                        towns: &["人民街街道", "南滩街道"],
                    },
                    CountyDef {
                        code: "630104",
                        name: "城西区",
                        short: "城西",
                        towns: &["西关大街街道", "古城台街道"],
                    },
                    CountyDef {
                        code: "630105",
                        name: "城北区",
                        short: "城北",
                        towns: &["朝阳街道", "小桥大街街道"],
                    },
                ],
            },
            CityDef {
                code: "630200",
                name: "海东市",
                counties: &[CountyDef {
                    code: "630202",
                    name: "乐都区",
                    short: "乐都",
                    towns: &["碾伯镇", "雨润镇"],
                }],
            },
        ],
    },
    ProvinceDef {
        code: "430000",
        name: "湖南省",
        municipality: false,
        brands: &["湘江", "炎帝", "神农", "潇湘", "芙蓉", "橘洲", "楚天"],
        cities: &[
            CityDef {
                code: "430200",
                name: "株洲市",
                counties: &[
                    CountyDef {
                        code: "430202",
                        name: "荷塘区",
                        short: "荷塘",
                        towns: &["月塘街道", "宋家桥街道"],
                    },
                    CountyDef {
                        code: "430203",
                        name: "芦淞区",
                        short: "芦淞",
                        towns: &["建设街道", "贺家土街道"],
                    },
                    CountyDef {
                        code: "430204",
                        name: "石峰区",
                        short: "石峰",
                        towns: &["响石岭街道", "清水塘街道"],
                    },
                    CountyDef {
                        code: "430211",
                        name: "天元区",
                        short: "天元",
                        towns: &["嵩山路街道", "泰山路街道"],
                    },
                    CountyDef {
                        code: "430281",
                        name: "醴陵市",
                        short: "醴陵",
                        towns: &["来龙门街道", "浦口镇"],
                    },
                ],
            },
            CityDef {
                code: "430100",
                name: "长沙市",
                counties: &[
                    CountyDef {
                        code: "430102",
                        name: "芙蓉区",
                        short: "芙蓉",
                        towns: &["五里牌街道", "定王台街道"],
                    },
                    CountyDef {
                        code: "430104",
                        name: "岳麓区",
                        short: "岳麓",
                        towns: &["望月湖街道", "橘子洲街道"],
                    },
                ],
            },
        ],
    },
    ProvinceDef {
        code: "620000",
        name: "甘肃省",
        municipality: false,
        brands: &["金城", "黄河", "陇原", "敦煌", "丝路", "河西", "陇上"],
        cities: &[CityDef {
            code: "620100",
            name: "兰州市",
            counties: &[
                CountyDef {
                    code: "620102",
                    name: "城关区",
                    short: "城关",
                    towns: &["张掖路街道", "雁南街道"],
                },
                CountyDef {
                    code: "620103",
                    name: "七里河区",
                    short: "七里河",
                    towns: &["西园街道", "敦煌路街道"],
                },
                CountyDef {
                    code: "620105",
                    name: "安宁区",
                    short: "安宁",
                    towns: &["培黎街道", "孔家崖街道"],
                },
            ],
        }],
    },
    ProvinceDef {
        code: "310000",
        name: "上海市",
        municipality: true,
        brands: &["浦江", "申城", "沪联", "东海", "外滩", "江南"],
        cities: &[CityDef {
            code: "310000",
            name: "上海市",
            counties: &[
                CountyDef {
                    code: "310101",
                    name: "黄浦区",
                    short: "黄浦",
                    towns: &["南京东路街道", "外滩街道"],
                },
                CountyDef {
                    code: "310104",
                    name: "徐汇区",
                    short: "徐汇",
                    towns: &["湖南路街道", "天平路街道"],
                },
                CountyDef {
                    code: "310115",
                    name: "浦东新区",
                    short: "浦东",
                    towns: &["陆家嘴街道", "张江镇"],
                },
            ],
        }],
    },
    ProvinceDef {
        code: "500000",
        name: "重庆市",
        municipality: true,
        brands: &["山城", "巴渝", "渝信", "长江", "嘉陵", "两江"],
        cities: &[CityDef {
            code: "500000",
            name: "重庆市",
            counties: &[
                CountyDef {
                    code: "500103",
                    name: "渝中区",
                    short: "渝中",
                    towns: &["解放碑街道", "朝天门街道"],
                },
                CountyDef {
                    code: "500105",
                    name: "江北区",
                    short: "江北",
                    towns: &["观音桥街道", "五里店街道"],
                },
                CountyDef {
                    code: "500107",
                    name: "九龙坡区",
                    short: "九龙坡",
                    towns: &["杨家坪街道", "石桥铺街道"],
                },
            ],
        }],
    },
];

/// An agency name pattern: `{prov}` province, `{city}` city, `{full}` county with its city,
/// `{short}` county short name.
pub struct AgencyTemplate {
    pub pattern: &'static str,
    pub domain: EnforcementDomain,
    /// Public security: officers are identified by 警号.
    pub police: bool,
    /// Always present at this level (the others are drawn).
    pub core: bool,
}

const fn t(
    pattern: &'static str,
    domain: EnforcementDomain,
    police: bool,
    core: bool,
) -> AgencyTemplate {
    AgencyTemplate {
        pattern,
        domain,
        police,
        core,
    }
}

use EnforcementDomain as D;

pub const PROVINCE_AGENCIES: &[AgencyTemplate] = &[
    t("{prov}市场监督管理局", D::MarketRegulation, false, true),
    t("{prov}生态环境厅", D::EcologyEnvironment, false, false),
    t("{prov}应急管理厅", D::WorkSafety, false, true),
    t("{prov}药品监督管理局", D::FoodDrug, false, false),
    t("{prov}交通运输厅", D::Transport, false, false),
];

/// Municipalities (直辖市) name their province-level bodies 局, not 厅.
pub const MUNICIPALITY_AGENCIES: &[AgencyTemplate] = &[
    t("{prov}市场监督管理局", D::MarketRegulation, false, true),
    t("{prov}生态环境局", D::EcologyEnvironment, false, false),
    t("{prov}应急管理局", D::WorkSafety, false, true),
    t("{prov}公安局", D::PublicSafety, true, false),
    t("{prov}消防救援总队", D::FireSafety, false, false),
    t(
        "{prov}人力资源和社会保障局",
        D::HumanResources,
        false,
        false,
    ),
    t("国家税务总局{prov}税务局", D::Taxation, false, false),
];

pub const CITY_AGENCIES: &[AgencyTemplate] = &[
    t("{city}市场监督管理局", D::MarketRegulation, false, true),
    t("{city}应急管理局", D::WorkSafety, false, true),
    t("{city}生态环境局", D::EcologyEnvironment, false, false),
    t("{city}公安局", D::PublicSafety, true, false),
    t("{city}消防救援支队", D::FireSafety, false, false),
    t(
        "{city}人力资源和社会保障局",
        D::HumanResources,
        false,
        false,
    ),
    t("国家税务总局{city}税务局", D::Taxation, false, false),
    t("{city}交通运输局", D::Transport, false, false),
    t("{city}文化旅游广电体育局", D::CultureTourism, false, false),
    t("{city}卫生健康委员会", D::PublicHealth, false, false),
    t("{city}自然资源和规划局", D::NaturalResources, false, false),
];

pub const COUNTY_AGENCIES: &[AgencyTemplate] = &[
    t("{full}市场监督管理局", D::MarketRegulation, false, true),
    t("{full}应急管理局", D::WorkSafety, false, true),
    t("{city}公安局{short}分局", D::PublicSafety, true, false),
    t(
        "{city}生态环境局{short}分局",
        D::EcologyEnvironment,
        false,
        false,
    ),
    t("{full}消防救援大队", D::FireSafety, false, false),
    t("{full}卫生健康局", D::PublicHealth, false, false),
    t(
        "{full}人力资源和社会保障局",
        D::HumanResources,
        false,
        false,
    ),
    t("{full}文化旅游体育局", D::CultureTourism, false, false),
];

pub fn fill(pattern: &str, prov: &str, city: &str, full: &str, short: &str) -> String {
    pattern
        .replace("{prov}", prov)
        .replace("{city}", city)
        .replace("{full}", full)
        .replace("{short}", short)
}

/// An inspection item (检查事项) with its legal basis.
pub struct ItemDef {
    pub code: &'static str,
    pub name: &'static str,
    pub legal_basis: &'static str,
    pub domain: EnforcementDomain,
}

const fn i(
    code: &'static str,
    name: &'static str,
    legal_basis: &'static str,
    domain: EnforcementDomain,
) -> ItemDef {
    ItemDef {
        code,
        name,
        legal_basis,
        domain,
    }
}

pub const ITEMS: &[ItemDef] = &[
    i(
        "JC-FD-001",
        "食品经营许可事项检查",
        "《中华人民共和国食品安全法》第一百一十条",
        D::FoodDrug,
    ),
    i(
        "JC-FD-002",
        "食品生产日常监督检查",
        "《食品生产经营监督检查管理办法》第十一条",
        D::FoodDrug,
    ),
    i(
        "JC-FD-003",
        "药品经营质量管理规范检查",
        "《中华人民共和国药品管理法》第九十九条",
        D::FoodDrug,
    ),
    i(
        "JC-FD-004",
        "餐饮服务食品安全检查",
        "《中华人民共和国食品安全法》第五十五条",
        D::FoodDrug,
    ),
    i(
        "JC-MR-001",
        "特种设备使用单位监督检查",
        "《中华人民共和国特种设备安全法》第五十七条",
        D::MarketRegulation,
    ),
    i(
        "JC-MR-002",
        "产品质量监督抽查",
        "《中华人民共和国产品质量法》第十五条",
        D::MarketRegulation,
    ),
    i(
        "JC-MR-003",
        "价格行为检查",
        "《中华人民共和国价格法》第三十四条",
        D::MarketRegulation,
    ),
    i(
        "JC-MR-004",
        "企业公示信息抽查",
        "《企业信息公示暂行条例》第十四条",
        D::MarketRegulation,
    ),
    i(
        "JC-WS-001",
        "安全生产条件检查",
        "《中华人民共和国安全生产法》第六十五条",
        D::WorkSafety,
    ),
    i(
        "JC-WS-002",
        "危险化学品安全使用检查",
        "《危险化学品安全管理条例》第七条",
        D::WorkSafety,
    ),
    i(
        "JC-WS-003",
        "有限空间作业安全检查",
        "《中华人民共和国安全生产法》第四十三条",
        D::WorkSafety,
    ),
    i(
        "JC-EE-001",
        "排污许可执行情况检查",
        "《排污许可管理条例》第二十八条",
        D::EcologyEnvironment,
    ),
    i(
        "JC-EE-002",
        "大气污染防治检查",
        "《中华人民共和国大气污染防治法》第二十九条",
        D::EcologyEnvironment,
    ),
    i(
        "JC-EE-003",
        "危险废物规范化管理检查",
        "《中华人民共和国固体废物污染环境防治法》第二十六条",
        D::EcologyEnvironment,
    ),
    i(
        "JC-PS-001",
        "治安保卫重点单位检查",
        "《企业事业单位内部治安保卫条例》第十三条",
        D::PublicSafety,
    ),
    i(
        "JC-PS-002",
        "旅馆业治安管理检查",
        "《旅馆业治安管理办法》第十三条",
        D::PublicSafety,
    ),
    i(
        "JC-FS-001",
        "消防安全监督检查",
        "《中华人民共和国消防法》第五十三条",
        D::FireSafety,
    ),
    i(
        "JC-FS-002",
        "公众聚集场所投入使用营业前消防安全检查",
        "《中华人民共和国消防法》第十五条",
        D::FireSafety,
    ),
    i(
        "JC-HR-001",
        "劳动保障监察",
        "《劳动保障监察条例》第十五条",
        D::HumanResources,
    ),
    i(
        "JC-HR-002",
        "农民工工资支付情况检查",
        "《保障农民工工资支付条例》第四十七条",
        D::HumanResources,
    ),
    i(
        "JC-TX-001",
        "纳税情况检查",
        "《中华人民共和国税收征收管理法》第五十四条",
        D::Taxation,
    ),
    i(
        "JC-TR-001",
        "道路运输经营者安全生产检查",
        "《中华人民共和国道路运输条例》第五十八条",
        D::Transport,
    ),
    i(
        "JC-CT-001",
        "娱乐场所经营活动检查",
        "《娱乐场所管理条例》第三十三条",
        D::CultureTourism,
    ),
    i(
        "JC-CT-002",
        "旅行社经营行为检查",
        "《旅行社条例》第四十一条",
        D::CultureTourism,
    ),
    i(
        "JC-PH-001",
        "公共场所卫生监督检查",
        "《公共场所卫生管理条例》第十条",
        D::PublicHealth,
    ),
    i(
        "JC-PH-002",
        "职业病防治监督检查",
        "《中华人民共和国职业病防治法》第六十二条",
        D::PublicHealth,
    ),
    i(
        "JC-NR-001",
        "矿产资源开采监督检查",
        "《中华人民共和国矿产资源法》第十九条",
        D::NaturalResources,
    ),
    i(
        "JC-OT-001",
        "乡镇综合行政执法巡查",
        "《中华人民共和国行政处罚法》第二十四条",
        D::Other,
    ),
    i(
        "JC-OT-002",
        "市容环境卫生责任区检查",
        "《城市市容和环境卫生管理条例》第九条",
        D::Other,
    ),
];

/// The item domains an agency of `domain` inspects (市场监管 also covers food and drugs).
pub fn item_domains(domain: EnforcementDomain) -> &'static [EnforcementDomain] {
    match domain {
        D::MarketRegulation => &[D::MarketRegulation, D::FoodDrug],
        D::FoodDrug => &[D::FoodDrug],
        D::WorkSafety => &[D::WorkSafety],
        D::EcologyEnvironment => &[D::EcologyEnvironment],
        D::PublicSafety => &[D::PublicSafety],
        D::FireSafety => &[D::FireSafety],
        D::HumanResources => &[D::HumanResources],
        D::Taxation => &[D::Taxation],
        D::Transport => &[D::Transport],
        D::CultureTourism => &[D::CultureTourism],
        D::PublicHealth => &[D::PublicHealth],
        D::NaturalResources => &[D::NaturalResources],
        D::NationalSecurity | D::Other => &[D::Other, D::FireSafety],
    }
}

pub const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任",
    "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏", "韦",
    "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "段", "雷", "侯", "龙", "史", "陶",
    "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "严", "武", "戴", "孔", "向", "汤",
];

pub const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "霞", "平", "刚", "华", "辉", "鹏", "斌", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭",
    "宁", "婷", "琳", "雪", "玲", "燕", "晨", "博", "文", "志", "建", "国", "红", "海", "峰", "林",
    "波", "欣", "怡", "佳", "倩", "雯", "晓", "东", "亮", "清", "源", "卫", "兵", "荣", "新", "春",
    "秋", "冬", "梅", "兰", "莉", "慧", "颖", "立", "成", "嘉", "子", "一",
];

/// Names common in Qinghai and Gansu's Tibetan areas, used now and then for officers there.
pub const TIBETAN_NAMES: &[&str] = &[
    "才让多杰",
    "卓玛",
    "扎西",
    "索南措",
    "拉毛",
    "更登",
    "尼玛才让",
    "完玛",
    "桑杰",
    "德吉",
];

pub const BRANDS: &[&str] = &[
    "华创", "鑫达", "恒信", "宏远", "瑞丰", "嘉禾", "新华", "众诚", "博远", "远航", "锦程", "安泰",
    "盛世", "九洲", "东方", "中联", "兴业", "永辉", "德润", "和泰", "启明", "星辰", "汇丰", "长青",
    "富民", "丰源", "同创", "卓越", "天成", "金鼎", "银河", "万通", "信达", "宏达", "诚信", "通达",
    "顺发", "利民", "福瑞", "康宁",
];

/// Trade words with the legal form usual for them.
pub const INDUSTRIES: &[(&str, &str)] = &[
    ("机械", "有限公司"),
    ("食品", "有限公司"),
    ("餐饮管理", "有限公司"),
    ("化工", "有限责任公司"),
    ("建材", "有限公司"),
    ("物流", "有限公司"),
    ("医药", "连锁有限公司"),
    ("电子科技", "有限公司"),
    ("服装", "有限公司"),
    ("商贸", "有限公司"),
    ("酒店管理", "有限公司"),
    ("房地产开发", "有限公司"),
    ("汽车销售服务", "有限公司"),
    ("新材料", "股份有限公司"),
    ("生物科技", "有限公司"),
    ("环保科技", "有限公司"),
    ("农业开发", "有限公司"),
    ("超市", "有限公司"),
    ("陶瓷", "有限公司"),
    ("轨道交通装备", "有限公司"),
    ("乳业", "股份有限公司"),
    ("旅游开发", "有限公司"),
    ("网络科技", "有限公司"),
    ("建筑工程", "有限公司"),
    ("印刷包装", "有限公司"),
    ("冶金", "有限责任公司"),
];

pub const SUPPLEMENT_REASONS: &[&str] = &[
    "现场执法时网络中断，未能及时赋码",
    "移动执法终端故障，事后补录",
    "接群众紧急求助先行检查，事后补录",
    "系统升级期间开展检查，事后补录",
];

pub const COMPLAINTS: &[&str] = &[
    "销售过期食品",
    "消防通道被杂物堵塞",
    "夜间施工噪声扰民",
    "拖欠员工工资",
    "废气直排、异味明显",
    "价格标示不清、收费与标价不符",
    "后厨卫生状况差",
    "电梯多次故障困人",
];

pub const PROBLEMS: &[&str] = &[
    "消防通道堵塞，已责令立即清理",
    "部分食品超过保质期，已下架并责令整改",
    "特种设备定期检验超期，责令停止使用并限期检验",
    "安全生产培训记录不全，责令限期补正",
    "危险废物贮存场所标识不规范，责令限期整改",
    "从业人员健康证明过期，责令限期办理",
    "应急预案未按规定演练，责令限期整改",
    "明码标价不规范，已当场纠正",
];

pub const GOOD_COMMENTS: &[&str] = &[
    "执法人员态度好，检查规范",
    "亮码检查，流程清楚，没有影响正常经营",
    "提出的整改建议很实用",
    "检查高效，时间不长",
];

pub const BAD_COMMENTS: &[&str] = &[
    "检查时间过长，影响正常营业",
    "同一事项本月已被检查过，重复检查",
    "执法人员态度生硬",
    "未提前说明检查依据",
];

pub const FEEDBACK: &[&str] = &[
    "希望合并同类检查，减少对企业的打扰",
    "对检查结论有异议，申请复核",
    "本月已接待三次检查，请核实是否重复",
];
