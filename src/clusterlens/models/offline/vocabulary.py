"""Names of things no CamVid class holds, taken from public category lists.

The offline model's query matcher refuses a phrase that is closer to one of these names
than to every CamVid class (:class:`clusterlens.models.text.QueryMatcher`, ``outside``).
COCO's 80 classes alone (``COCO_OUTSIDE`` in :mod:`clusterlens.models.offline.segmenter`)
leave out most near-misses of a road scene: a desk lamp is not a lamp post, a fishing
rod not a pole, a cargo ship not a car.

How :data:`CATEGORY_OUTSIDE` was built (once, from text; nothing is downloaded):

1. Every name of ADE20K-150, COCO-Stuff-171, Objects365, LVIS v1 and Open Images V7
   (the ``names`` of those data sets' YAML files in the ``ultralytics`` package, and
   :data:`clusterlens.evaluate.seg_datasets.COCOSTUFF_CLASSES`), split at "/" and ","
   into its synonyms, lower-cased, "-other"/"-stuff" suffixes and "(...)" notes
   removed: 2466 names.
2. Removed: the names a CamVid class holds by CamVid's 11-class grouping
   (:data:`CAMVID_HELD`), the names too ambiguous to refuse (:data:`AMBIGUOUS`: "lamp",
   "light", "train", "plant", car and bicycle parts, names that are also car makes...),
   the matcher's own class phrases and the COCO names (already outside).
3. Kept: the names whose cosine similarity (all-MiniLM-L6-v2) to some CamVid class
   phrase is at least 0.40. A name further from every class phrase than that did not
   change one decision on the three development phrase lists of
   ``benchmarks/matcher.py`` (2169 names or these 513: the same precision and recall
   on the first and held-out lists, and one more right match on the fresh list), and
   each name costs embedding time when a matcher starts.

The lists were sorted by category name, never by a phrase of a benchmark list.
"""

from __future__ import annotations


def _names(text: str) -> tuple[str, ...]:
    """The "; "-separated names of ``text`` (line breaks inside a name are spaces)."""
    return tuple(" ".join(name.split()) for name in text.split(";"))


#: Category-list names a CamVid class holds (SegNet's 11-class grouping of CamVid's 32:
#: a wall or bridge is Building, grass Tree, a motorcycle Bicyclist), kept out of
#: :data:`CATEGORY_OUTSIDE`. They are *not* added to the class phrases: on the
#: development lists that cost precision (single words such as "woman" or "fire truck"
#: pull in "a woman on a bike" or "fire").
CAMVID_HELD: dict[str, tuple[str, ...]] = {
    "Sky": _names(
        """
        sky; clouds
        """
    ),
    "Building": _names(
        """
        building; house; skyscraper; office building; tower; wall; wall brick;
        wall stone; wall concrete; roof; convenience store; clock tower; bridge;
        castle; hovel
        """
    ),
    "Pole": _names(
        """
        pole; streetlight; street lights; street light; lamppost; street lamp;
        telephone pole; telegraph pole; telegraph post; flagpole
        """
    ),
    "Road": _names(
        """
        road
        """
    ),
    "Pavement": _names(
        """
        sidewalk; pavement
        """
    ),
    "Tree": _names(
        """
        tree; palm tree; palm; bush; grass; maple; willow; leaves; branch
        """
    ),
    "SignSymbol": _names(
        """
        street sign; traffic sign; traffic light; stop sign; crosswalk sign;
        speed limit sign; signboard
        """
    ),
    "Fence": _names(
        """
        fence; railing
        """
    ),
    "Car": _names(
        """
        car; vehicle; truck; bus; taxi; van; automobile; suv; pickup truck;
        school bus; trailer truck; heavy truck; semi truck; tow truck; fire
        truck; fire engine; police car; race car; racing car; garbage truck;
        land vehicle; motor vehicle; sports car; cab; taxicab; motorbus;
        autobus; motorcoach; minivan; police cruiser; patrol car; squad car;
        jeep; limousine; convertible; ambulance; articulated lorry; trucking
        rig; tractor trailer; car automobile; cab taxi; bus vehicle; auto
        automobile; automotive vehicle; passenger car; convertible automobile;
        auto
        """
    ),
    "Pedestrian": _names(
        """
        person; human; woman; man; girl; boy; child
        """
    ),
    "Bicyclist": _names(
        """
        bicycle; bike; bike bicycle; motorcycle; motor scooter; minibike; dirt
        bike
        """
    ),
}

#: Names kept out of :data:`CATEGORY_OUTSIDE` because a CamVid class may hold what they
#: name (a "lamp" may be a street lamp, a "trolley" a tram, a "runner" a pedestrian) or
#: because they are parts of a car or bicycle; COCO's exclusions are repeated here.
AMBIGUOUS: tuple[str, ...] = _names(
    """
    lamp; light; wheel; tire; post; poster; trolley; carriage; wagon; tractor;
    railroad car; railway car; train; railroad train; trunk; trunks; wood; gravel;
    ground; dirt; stairs; path; flower; plant; canopy; helmet; bicycle helmet; wall
    panel; door; awning; cornice; structural; porch; motor home; camper; camper
    vehicle; camping bus; fog; moss; bamboo; christmas tree; traffic cone; cone;
    parking meter; lightning rod; antenna; aerial; dirt track; runway; land; earth;
    railroad; floor stone; billboard; flag; milepost; marker; human body; human
    face; human head; human hand; human leg; human foot; human arm; stroller;
    wheelchair; shopping cart; handcart; cart; barrow; tricycle; unicycle; scooter;
    rickshaw; segway; bicycle wheel; forklift; golf cart; golfcart; machinery
    vehicle; armored combat vehicle; tank; column; windowpane; window; coach; coach
    part of a train; mast; headlight; headlamp; rear light; taillight; brake light;
    vehicle registration plate; license plate; grille; windshield wiper; motor; auto
    part; cabin car; freight car; railcar; railcar part of a train; passenger car
    part of a train; railway car part of a train; railroad car part of a train;
    train railroad vehicle; caboose; elevator car; bullet train; lawn cart; pier;
    mud; sand; plants; vegetable; base; ceiling; floor; hill; mountain; field;
    building other; plant other; wall other; tree other; bench; fire hydrant;
    hydrant; potted plant; double decker; manhole; platform; water tower;
    lighthouse; wall tile; wall wood; baby carriage; baby; jaguar; beetle; cayenne;
    runner; blinker; rearview mirror; steering wheel; seat belt; grillwork; stairway
    """
)

#: The outside vocabulary beyond COCO: 513 names (see the module note for how).
CATEGORY_OUTSIDE: tuple[str, ...] = _names(
    """
    aeroplane; aircraft; alcohol; animal; anklet; apparel; arctic; armadillo; armband;
    armoire; ashtray; automobile battery; bag; baggage; ballet skirt; balloon; bar;
    barge; baseball; basin; basket; basketball; bathing trunks; battery; bead; bean
    curd; beanbag; beanie; beany; bedpan; beefburger; beer; beer bottle; belt; bib;
    binoculars; birdcage; birdhouse; blanket; blazer; blender; bob; bobber; bobbin;
    bobfloat; boeuf; bola; bolo; bolt; bonnet; bookcase; boots; bow; box; bracelet;
    breechcloth; broach; broom; brownie; brush; bucket; bull; bun; bunk bed; burger;
    butterfly; cabana; cabinet; cabinetry; cage; camera; candle; candy; canoe; car
    battery; card; cardboard; cargo ship; cargo vessel; carnivore; carpenter's saw;
    carpet; carpet slipper; cassette; cat furniture; caterpillar; cattle; cd player;
    celery; cellphone; cellular phone; chainsaw; cheese; cherry; chicken; chopping
    block; cigar; cigarette; cigarette case; cigarette pack; clippers for plants; cloak;
    closet; cloth; clothes; clothes basket; clothing; clutch bag; coaster; coat; coat
    hanger; cocoanut; coconut; coffee; coffee cup; coin; coleslaw; collar; comb;
    compass; computer; container; cordial; cork; corn; cornbread; cornet; cornmeal;
    costume; cover; cowboy hat; crab; crescent roll; crib; crowbar; crown; cruise liner;
    crumb; cuke; curtain; cushion; cutting; cyder; cylinder; deadbolt; deck chair; deer;
    derby; desk; diaper; dinosaur; dog collar; doghouse; doll; doll's house; dollhouse;
    domestic ass; donkey; doorhandle; doorknocker; doormat; dragonfly; drapery; drawer;
    dresser; drone; duck; duffel; duffle; dumpling; dumpster; durian; envelope;
    escalator; falcon; fan; ferris wheel; ferry; ferryboat; fig; fig fruit; fighter jet;
    fin footwear; fireplace; fishing pole; fishing rod; flashlight; fleece; floor wood;
    floral arrangement; flower arrangement; flying disc; food; football; footrest;
    footstool; footwear; frame; frog; fruit; furniture; garden cart; glass; globe; goat;
    gorilla; grape; green bean; green beans; green vegetables; griddle; grill; grizzly;
    grocery bag; gumshoe; gun; ham; hammer; hamster; hand truck; handgun; handle; head
    phone; headscarf; hedgehog; helicopter; heron; hockey stick; home appliance; home
    base; home base baseball; home plate; home plate baseball; hominy grits; hood; hook;
    horse carriage; hotplate; hourglass; houseboat; houseplant; human eye; humidifier;
    ice skate; ipod; jean; jeans; jersey; jet plane; jet ski; kayak; keg; kennel;
    kerosene lamp; kerosine lamp; kilt; kitchen island; kitten; kitty; koala; ladder;
    lamb; lampshade; lance; laundry basket; leaflet; leather; leather shoes; leg
    covering; lego; lego set; lemonade; light bulb; light switch; lightbulb; liquor;
    log; loincloth; lounge; luggage; magnet; maize; manatee; mango; map; mattress;
    measuring rod; metal; missile; mobile phone; money; monkey; mountain lion; mushroom;
    necklace; nest; net; nightclothes; nightshirt; nightstand; oar; oil lamp; orange
    fruit; other shoes; outlet; owl; packet; pajamas; pants; parachute; parasail;
    passenger ship; pastry; patty; patty food; peach; pear; pegleg; penguin; pennant;
    penny; pet; pew; phone; pickle; picture; pineapple; pinecone; pinwheel; pistol;
    pitcher; pitchfork; plastic; plate; plough; plow; plume; pocketknife; poker; polar
    bear; pony; postbox; postcard; projectile; propeller; prune; pumpkin; punching bag;
    puppy; purse; pushcart; pushpin; quilt; rabbit; raccoon; racket; radar; radiator;
    radio; raft; raincoat; rat; raven; recliner; reel; reflector; rib; rifle; ring;
    river; river boat; road map; robe; rock; rocket; roll; roller skate; roller skates;
    rollerblade; rolling pin; root beer; rubber; rubber band; rug; runner carpet;
    saddle; saddlebag; saddlecloth; safety pin; sail; sailboat; sandals; sawhorse;
    scarf; screwdriver; sculpture; sea; sea scooter; sea star; seabird; seal; seaplane;
    seat; shawl; shears; shelf; sherbet; shield; shirt; shoe; shopping bag; shotgun;
    shoulder bag; shovel; skating and skiing shoes; ski; ski boot; ski jacket; ski pole;
    skiboard; skirt; sled; sledge; slide; slipper footwear; snake; sneaker; snow;
    snowmobile; soccer; space shuttle; spatula; speaker; spectacles; sports equipment;
    spotlight; square block; squirrel; stagecoach; starfish; stationary bicycle; statue;
    stereo; stone; strap; stuffed toy; sugarcane; sugarcane plant; sunflower;
    sunglasses; sunshade; swan; sweater; sweatshirt; swimming trunks; sword; table lamp;
    tangerine; tapestry; target; tarp; telephone; television; television set; tent;
    tinfoil; tissue; toilet paper; toilet tissue; tool; towel rail; toy; trampoline;
    trash bin; treadmill; tree house; trench coat; trousers; trunks clothing; tuba;
    turtleneck; underclothes; underclothing; vane; vane weathervane; veil; vest; visor;
    vulture; wagon wheel; waistcloth; walking cane; walking stick; wall clock; wall
    plug; wall socket; wallet; wardrobe; water; water scooter; waterdrops; weapon;
    weathervane; wheelbarrow; wind cone; wind vane; windmill; wine; wooden leg;
    woodpecker; wreath; wrench; yacht
    """
)
